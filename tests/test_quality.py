"""Quality experiments on tiny models: rows carry the promised fields, the mechanisms show."""

import math

import pytest

from vaestudy.guide import quality as Q


@pytest.fixture(scope="module")
def wan_clip(tiny):
    vae = tiny("wan2.1")
    source, z = Q.clip_latent(vae, "carphone", 9, (32, 32), scale=1.0)
    return vae, source, z


def test_load_model_falls_back_loudly():
    vae, used, msg = Q.load_model("wan2.1", "pretrained", fallback="tiny")
    if used == "tiny":
        assert "FELL BACK" in msg and "RANDOM" in msg
    assert "RANDOM WEIGHTS" in Q.weights_caption("wan2.1", "tiny")
    assert "RANDOM" not in Q.weights_caption("wan2.1", "embedded")


def test_tiling_sweep_rows(wan_clip):
    vae, source, z = wan_clip
    rows = Q.tiling_sweep(vae, z, overlaps=(0, 2), blends=("linear", "none"), grids=("pixel", "latent"), source=source)
    assert [(r["overlap"], r["grid"]) for r in rows][:1] == [(0, "pixel")] and len(rows) == 1 + 2 * 2
    for r in rows:
        assert {"seam_db", "interior_db", "gap_db", "seam_score", "psnr_vs_source", "seconds", "effective_overlap"} <= set(r)
    assert rows[0]["gap_db"] > 0  # touching tiles: error gathers at the seam


def test_chunking_compare_scores_all_at_the_same_boundaries(wan_clip):
    vae, source, z = wan_clip
    rows = Q.chunking_compare(vae, z, 25.0, source=source, warp=False)
    names = [r["strategy"] for r in rows]
    assert names[:3] == ["source clip", "full", "chunked"] and "chunked-naive" in names
    cache = rows[2]
    assert math.isinf(cache["psnr_vs_full"]) or cache["psnr_vs_full"] > 90  # Wan: the stream is the full decode
    assert all(r["boundaries"] == [5] for r in rows)  # the jump after frame 0 is reported apart
    assert all(math.isfinite(r["first_jump_ratio"]) and r["first_jump_ratio"] > 0 for r in rows)  # a defined ratio
    assert cache["first_frame_s"] <= cache["seconds"]


def test_streaming_timeline(wan_clip):
    vae, _, z = wan_clip
    tl = Q.streaming_timeline(vae, z, repeats=1)
    # the first chunk is 1 of 9 frames: it is out before the one-call decode of all 9 has finished (same run)
    assert tl["frames"] == [1, 4, 4] and 0 < tl["ttff_min_s"] < tl["full_min_s"]


def test_groupnorm_effect_cogvideox(tiny):
    vae = tiny("cogvideox")
    _, z = Q.clip_latent(vae, "carphone", 17, (16, 16), scale=1.0)
    rows = {(r["setting"], r["what"].split()[0]): r for r in Q.groupnorm_effect(vae, z)}
    assert rows[("own norm", "chunks")]["max_abs"] > 1e-4  # statistics span the chunk
    assert rows[("per-frame GroupNorm", "chunks")]["max_abs"] < 1e-4  # exact again


def test_decoder_attention_settings_apply_and_are_undone(wan_clip):
    import torch

    vae, _, z = wan_clip
    attn = vae.decoder.mid_block.attentions[0]
    before = attn.proj.weight.detach().clone()
    h = torch.randn(1, attn.dim, 1, 2, 2)
    with Q.decoder_attention(vae, "identity"):
        assert torch.equal(attn(h), h)
    assert torch.equal(attn.proj.weight, before)  # restored
    with Q.decoder_attention(vae, "fresh", seed=3):
        w3 = attn.proj.weight.detach().clone()
    with Q.decoder_attention(vae, "fresh", seed=3):
        assert torch.equal(attn.proj.weight, w3)  # seeded
    assert not torch.equal(w3, before) and torch.equal(attn.proj.weight, before)
    with pytest.raises(ValueError, match="setting='off'; valid: as loaded, identity, fresh"):
        Q.decoder_attention(vae, "off")


def test_decoder_attention_is_refused_for_a_model_without_one(tiny):
    with pytest.raises(ValueError, match="AutoencoderKLCogVideoX has no decoder.mid_block.attentions"):
        Q.decoder_attention(tiny("cogvideox"), "identity")


def test_attention_locality_rows(wan_clip):
    vae, _, z = wan_clip  # latent (1, 16, 3, 4, 4)
    rows = Q.attention_locality(vae, z, tile=3, overlap=1, near=4, band=2)
    assert [r["attention"] for r in rows] == ["as loaded", "identity", "fresh"]
    for r in rows:
        assert r["max_abs"] > 0 and r["seam_concentration"] > 0 and r["error_map"].shape == (32, 32)
    assert rows[0]["max_abs"] != rows[1]["max_abs"]  # random weights: the attention is not the identity
    from vaestudy.decode import decode_full

    given = Q.attention_locality(vae, z, tile=3, overlap=1, near=4, band=2, settings=("as loaded",), ref=decode_full(vae, z))
    assert given[0]["max_abs"] == rows[0]["max_abs"]  # a full decode at hand stands for the "as loaded" one
