"""The embedded tiny VAEs: shipped, loadable offline, and as good as their model cards say.

Held-out numbers are re-measured on the card's ``test_subset`` (the card computes it the same
way, on the shipped fp16 weights), so the test stays fast while checking the published number.
"""


import numpy as np
import pytest
import torch

from conftest import FP32_EXACT, assert_video_close
from vaestudy import data
from vaestudy.registry.embedded import (
    EMBEDDED,
    WEIGHTS_DIR,
    embedded_card,
    load_embedded,
)
from vaestudy.training.heldout import heldout_scores, reconstruct

FAMILIES = sorted(EMBEDDED)


@pytest.fixture(scope="module")
def models():
    cache = {}

    def get(family):
        if family not in cache:
            cache[family] = load_embedded(family)
        return cache[family]

    return get


def test_registry_keys_match_the_model_registry():
    from vaestudy.registry.families import FAMILIES as REGISTRY

    assert set(EMBEDDED) == {"wan2.1", "cogvideox"}
    for key, e in EMBEDDED.items():
        assert REGISTRY[key].diffusers_class == e.diffusers_class


def test_unknown_family_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"family_name='sd15'.*wan2\.1, cogvideox"):
        load_embedded("sd15")
    with pytest.raises(ValueError, match="family_name='hunyuanvideo'"):
        embedded_card("hunyuanvideo")


def test_weights_are_shipped_within_budget():
    for e in EMBEDDED.values():
        assert e.weights_path.exists() and e.card_json_path.exists() and e.card_md_path.exists(), e.stem
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.glob("*.safetensors"))
    assert total <= 20e6, f"{total / 1e6:.1f} MB of weights in the package (budget 20 MB)"


@pytest.mark.parametrize("family", FAMILIES)
def test_loads_offline_in_fp32_eval_mode(family, models, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    vae = models(family)
    card = embedded_card(family)
    assert type(vae).__name__ == EMBEDDED[family].diffusers_class == card["diffusers_class"]
    assert not vae.training
    assert {p.dtype for p in vae.parameters()} == {torch.float32}
    assert sum(p.numel() for p in vae.parameters()) == card["parameters"]
    assert card["config"]["z_dim" if family == "wan2.1" else "latent_channels"] == 16


@pytest.mark.parametrize("family", FAMILIES)
def test_model_card_states_the_json_numbers_and_command(family):
    card = embedded_card(family)
    md = EMBEDDED[family].card_md_path.read_text()
    ho, tr = card["heldout"], card["training"]
    assert f"PSNR **{ho['psnr_db']:.2f} dB**, SSIM **{ho['ssim']:.3f}**" in md
    assert tr["command"] in md and tr["command"].startswith("python -m vaestudy.training.train_tiny --family ")
    assert tr["wall_minutes"] <= 60.5, "each embedded model trains in at most an hour here (wall clock)"
    assert 1 <= tr["threads"] <= 2, "this machine has 2 cores"
    assert ho["clip"] == "bikes" and ho["frames"] == 17 and ho["size"] == [128, 128]
    assert "bikes" not in str(tr["data"]["clips"]), "the held-out clip must not be in the training data"


@pytest.mark.parametrize("family", FAMILIES)
def test_shapes_follow_4x8x8_compression(family, models):
    vae = models(family)
    x = data.load_clip("carphone", 9, (32, 48))[None]
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mode()
    assert z.shape == (1, 16, 3, 4, 6)
    y = reconstruct(vae, x)
    assert y.shape == x.shape and float(y.abs().max()) <= 1.0


@pytest.mark.parametrize("family", FAMILIES)
def test_heldout_psnr_reproduces_the_model_card(family, models):
    """Re-measure the card's test subset (one 128x128x17 crop, scored alone in the card too)."""
    card = embedded_card(family)
    ho = card["heldout"]
    sub = ho["test_subset"]
    crops, specs = data.eval_crops(ho["clip"], len(ho["crops"]), ho["frames"], tuple(ho["size"]))
    assert specs == ho["crops"], "eval_crops() changed since the card was written"
    for i in sub["indices"]:
        assert ho["per_crop"][i]["psnr_db"] == pytest.approx(sub["psnr_db"], abs=1e-3)
    got = heldout_scores(models(family), crops[list(sub["indices"])])
    assert abs(got["psnr_db"] - sub["psnr_db"]) < 0.5, (got["psnr_db"], sub["psnr_db"])
    assert abs(got["ssim"] - sub["ssim"]) < 0.01, (got["ssim"], sub["ssim"])
    # and the mean over all crops is what the card states
    assert np.mean([c["psnr_db"] for c in ho["per_crop"]]) == pytest.approx(ho["psnr_db"], abs=1e-2)


def test_pooled_psnr_is_the_psnr_of_all_crops_together():
    """The card's pooled PSNR equals skimage's PSNR over the crops concatenated, and sits below the mean of the
    per-crop PSNRs when one crop is much easier than the other (the case it is there to expose)."""
    from skimage.metrics import peak_signal_noise_ratio

    from vaestudy.training.heldout import _mean_scores, _to_unit, video_scores

    g = torch.Generator().manual_seed(0)
    ref = torch.rand(2, 3, 3, 16, 16, generator=g) * 2 - 1
    test = ref + torch.randn(ref.shape, generator=g) * torch.tensor([0.01, 0.2]).view(2, 1, 1, 1, 1)
    got = _mean_scores([video_scores(ref[k], test[k]) for k in range(2)])
    whole = peak_signal_noise_ratio(np.concatenate([_to_unit(r) for r in ref]),
                                    np.concatenate([_to_unit(t) for t in test]), data_range=1.0)
    assert got["pooled_psnr_db"] == pytest.approx(whole, abs=1e-9)
    assert got["pooled_psnr_db"] < got["psnr_db"] - 5


@pytest.mark.parametrize("family", FAMILIES)
def test_model_card_states_its_pooled_psnr(family):
    ho = embedded_card(family)["heldout"]
    md = EMBEDDED[family].card_md_path.read_text()
    assert f"PSNR {ho['pooled_psnr_db']:.2f} dB; the yardstick's {ho['bicubic_x8']['pooled_psnr_db']:.2f} dB" in md
    assert ho["pooled_psnr_db"] < ho["psnr_db"], "pooling weighs the hardest crops most"
    per_mse = [10 ** (-c["psnr_db"] / 10) for c in ho["per_crop"]]  # consistent with the per-crop numbers
    assert -10 * np.log10(np.mean(per_mse)) == pytest.approx(ho["pooled_psnr_db"], abs=1e-2)


def test_bicubic_yardstick_in_the_wan_card_is_recomputed_from_the_crops():
    """The card's per-frame bicubic x8 reference (no model) is measured on the same crops, not typed in."""
    from vaestudy.training.heldout import baseline_scores, resize_baseline

    ho = embedded_card("wan2.1")["heldout"]
    crops, _ = data.eval_crops(ho["clip"], len(ho["crops"]), ho["frames"], tuple(ho["size"]))
    got = baseline_scores(crops, 8)
    assert [round(p["psnr_db"], 2) for p in got["per_crop"]] == ho["bicubic_x8"]["per_crop_psnr_db"]
    assert got["psnr_db"] == pytest.approx(ho["bicubic_x8"]["psnr_db"], abs=1e-3)
    assert f"scores {ho['bicubic_x8']['psnr_db']:.2f} dB" in EMBEDDED["wan2.1"].card_md_path.read_text()
    assert got["pooled_psnr_db"] == pytest.approx(ho["bicubic_x8"]["pooled_psnr_db"], abs=1e-3)
    up = resize_baseline(crops[:1], 1)  # factor 1 changes nothing (up to float error)
    assert float((up - crops[:1]).abs().max()) < 1e-5
    with pytest.raises(ValueError, match=r"factor=3 must be a positive integer dividing height and width \(128, 128\)"):
        resize_baseline(crops[:1], 3)


def test_load_vae_embedded_is_the_shipped_model(models):
    from vaestudy.registry.load import load_vae

    vae = load_vae("wan2.1", weights="embedded")
    ref = models("wan2.1").state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in vae.state_dict().items())


# ---- the trained Wan-class model through the study's decode strategies -----------------------

@pytest.fixture(scope="module")
def wan_latent(models):
    vae = models("wan2.1")
    x = data.load_clip("bikes", 9, (32, 32), start=40, crop=(120, 300))[None]
    with torch.no_grad():
        return vae.encode(x).latent_dist.mode()


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_wan_chunked_decode_equals_full_decode(models, wan_latent, chunk):
    from vaestudy.decode import decode_chunked, decode_full

    vae = models("wan2.1")
    ref = decode_full(vae, wan_latent).video
    res = decode_chunked(vae, wan_latent, chunk=chunk)
    assert res.exact
    assert_video_close(res.video, ref, atol=FP32_EXACT, what=f"trained Wan, chunk={chunk} vs full")  # reassociation only


def test_wan_tiled_decode_error_sits_in_the_seam_bands(models):
    from vaestudy.decode import decode_full, decode_tiled
    from vaestudy.measure.oracle import compare, seam_concentration

    vae = models("wan2.1")
    x = data.load_clip("bikes", 5, (96, 96), start=100, crop=(100, 250))[None]
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mode()  # (1, 16, 2, 12, 12)
    ref = decode_full(vae, z).video
    res = decode_tiled(vae, z, tile=7, overlap=2)  # 2x2 tiles, 2 latent px (16 px) of overlap, seams at 48 px
    out = compare(ref, res.video, seams_y=res.extra["seams_y"], seams_x=res.extra["seams_x"], band=4)
    assert not res.exact and out["max_abs"] > 1e-3  # tiling is not exact
    ratio = seam_concentration(out["seam_bands"], near=8)
    assert ratio > 2.0, f"error within 8 px of a seam is only {ratio:.2f}x the error farther away"


def test_wan_decoder_attention_is_what_its_recipe_says(models):
    """``--no-decoder-attention`` ships a zero output projection: the mid-block attention is the identity."""
    vae = models("wan2.1")
    attn = vae.decoder.mid_block.attentions[0]
    frozen = bool(embedded_card("wan2.1")["training"]["recipe"].get("no_decoder_attention"))
    is_zero = not attn.proj.weight.any() and not attn.proj.bias.any()
    assert is_zero == frozen
    h = torch.randn(1, attn.dim, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(attn(h), h) == frozen


# ---- the trained CogVideoX-class model: the GroupNorm gotcha on real weights -----------------

def test_cogvideox_chunked_decode_is_not_exact_on_trained_weights(models):
    """CogVideoX decodes in 2-latent-frame batches whose GroupNorm statistics differ from one pass."""
    from vaestudy.decode import decode_chunked, decode_single_pass, framewise_groupnorm
    from vaestudy.measure.oracle import compare

    vae = models("cogvideox")
    x = data.load_clip("bikes", 17, (16, 16), start=60, crop=(120, 300))[None]
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mode()  # 5 latent frames: batches of 3 + 2
    one_pass = decode_single_pass(vae, z).video
    chunked = decode_chunked(vae, z, chunk=2)
    assert not chunked.exact
    assert compare(one_pass, chunked.video)["max_abs"] > 1e-3
    with framewise_groupnorm(vae):  # per-frame statistics remove the dependence on the chunking
        # 1e-4, not 1e-5: the trained model's activations are larger, and so is fp32's reassociation error
        assert_video_close(decode_chunked(vae, z, chunk=2).video, decode_single_pass(vae, z).video, atol=1e-4,
                           what="trained CogVideoX, chunks of 2 vs one pass, per-frame GroupNorm")


def test_heldout_frames_finds_a_cut_and_agrees_with_the_whole_clip_score(models):
    from vaestudy.training.heldout import heldout_frames, video_scores

    a, _ = data.still_with_camera_path("astronaut", 17, (32, 32), shift_per_frame=(0.0, 1.0))
    b, _ = data.still_with_camera_path("brick", 17, (32, 32), shift_per_frame=(1.0, 0.0))
    cut = torch.cat([a[:, :6], b[:, 6:]], dim=1)  # a scene cut between frames 5 and 6
    vae = models("wan2.1")
    (row,) = heldout_frames(vae, cut[None])
    assert row["change_at"] == 6 and len(row["adjacent_ssim"]) == 16
    assert row["psnr"].shape == row["bicubic_psnr"].shape == (17,)
    # per-frame PSNRs are the whole-clip score taken apart: their MSEs average back to it
    whole = video_scores(cut, reconstruct(vae, cut[None])[0])["psnr_db"]
    assert -10 * np.log10(np.mean(10 ** (-row["psnr"] / 10))) == pytest.approx(whole, abs=1e-6)
    assert row["colour"]["psnr_db"] == pytest.approx(whole, abs=1e-9)
    assert row["colour"]["offset_free_psnr_db"] >= whole
    (still,) = heldout_frames(vae, a[None])
    assert still["adjacent_ssim"].min() > row["adjacent_ssim"].min()
    with pytest.raises(ValueError, match=r"crops shape \(3, 17, 32, 32\)"):
        heldout_frames(vae, cut)


def test_colour_offset_tells_a_colour_cast_from_noise():
    from vaestudy.training.heldout import colour_offset

    g = torch.Generator().manual_seed(0)
    ref = torch.rand(3, 5, 16, 16, generator=g) - 0.5  # in [-0.5, 0.5]: no clamping below
    cast = ref + torch.tensor([0.1, -0.04, 0.0]).view(3, 1, 1, 1)  # +0.05, -0.02, 0 in [0, 1] units
    got = colour_offset(ref, cast)
    assert got["offset"] == pytest.approx((0.05, -0.02, 0.0), abs=1e-6)
    assert got["share"] == pytest.approx(1.0, abs=1e-6) and got["offset_free_psnr_db"] > 100
    noise = torch.randn(ref.shape, generator=g) * 0.05
    noisy = colour_offset(ref, ref + noise - noise.mean(dim=(1, 2, 3), keepdim=True))  # zero mean per channel
    assert noisy["share"] < 1e-6 and noisy["offset_free_psnr_db"] == pytest.approx(noisy["psnr_db"], abs=1e-4)
    both = colour_offset(ref, cast + noise)
    assert 0.3 < both["share"] < 0.95 and both["offset_free_psnr_db"] > both["psnr_db"]
