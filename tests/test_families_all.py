"""Facts about every video VAE family in the registry, on tiny configs of the real diffusers classes.

The families added for issue 20 (Wan 2.2, HunyuanVideo 1.5, LTX-2, Cosmos, EasyAnimate, Allegro, KVAE, MiniMax-H3,
VidTok, SVD) each get: their frame rule and shapes from the family's own decode(), bad input refused before any
decode, our tiled decode with its error at the seams (convolutional decoders), pretrained weights failing fast
offline with the download command, and a save/load round trip. Then one fact per family that its decode() makes
peculiar: HunyuanVideo 1.5's N x N attention mask, MiniMax-H3's clip cross-fade, Allegro's 3-D tiles, Cosmos
ignoring its tiling switches, SVD's per-frame latents. Cost figures (parameters, FLOPs) are recomputed against the
registry's cache.
"""

from __future__ import annotations

import importlib.util
import socket

import pytest
import torch

from conftest import FP32_EXACT, assert_bit_equal, assert_video_close, latent_for
from vaestudy.bench.cost import (
    attention_mask_bytes,
    compute_cost,
    count_latent_frames,
    largest_frames_for_mask,
)
from vaestudy.decode.common import (
    call_decode,
    decoder_pass,
    family_decode_settings,
    own_decode,
    own_tile_grid,
    plain_decode,
)
from vaestudy.decode.full import decode_full
from vaestudy.decode.strategies import resolve, run_strategy, strategies_for
from vaestudy.decode.streams import stream_chunk, stream_plan, window_context
from vaestudy.decode.tiled import blend_ramp
from vaestudy.measure.metrics import seam_band_psnr
from vaestudy.pipelines.streaming import WindowStream
from vaestudy.registry import FAMILIES, family_of, get_family, load_vae
from vaestudy.registry.cost import parameter_counts, read_cost_file
from vaestudy.registry.load import download_command

NEW = ("wan2.2", "hunyuanvideo1.5", "ltx2", "cosmos", "easyanimate", "allegro", "kvae", "minimax-h3", "vidtok", "svd")
# a decode() that only works in its own 3-D tiles needs a whole tile even on a tiny config (seconds): the slow tier
NEW_PARAMS = [pytest.param(n, marks=pytest.mark.slow) if get_family(n).decode_tiling == "only" else n for n in NEW]


def _small_latent(vae, hw: int = 4, seed: int = 0) -> torch.Tensor:
    """The smallest multi-frame latent the family's own decode() takes, hw x hw latent pixels (or its tile grid)."""
    fam = family_of(vae)
    base, step, _, _ = fam.frame_rule
    grid = own_tile_grid(vae)
    hw = hw if grid is None else grid[1][0]
    return latent_for(vae, base + step if base == 1 else base, hw, seed=seed)


def _has_attention(module: torch.nn.Module) -> bool:
    return any("attn" in type(m).__name__.lower() or "attention" in type(m).__name__.lower()
               for m in module.modules())


def test_the_new_families_are_registered_and_told_apart():
    assert set(NEW) <= set(FAMILIES)
    # one class, two configs: Wan 2.1 and Wan 2.2 are told apart by the config's latent channels, not by class name
    old, new = get_family("wan2.1"), get_family("wan2.2")
    assert old.diffusers_class == new.diffusers_class
    for name in ("wan2.1", "wan2.2"):
        vae = load_vae(name, "tiny")
        del vae._vaestudy_family  # as a model from elsewhere would come: no registry label
        assert family_of(vae).name == name


@pytest.mark.parametrize("name", NEW)
def test_bad_input_is_refused_before_any_decode(name, tiny, monkeypatch):
    fam, vae = get_family(name), tiny(name)

    def no_decode(*args, **kwargs):
        raise AssertionError("decode ran on invalid input")

    monkeypatch.setattr(vae, "decode", no_decode)
    monkeypatch.setattr(vae.decoder, "forward", no_decode)
    base, step, pbase, pstep = fam.frame_rule
    s = fam.spatial_compression
    if pstep > 1:  # a pixel frame count off the rule
        with pytest.raises(ValueError, match=f"frames={pbase + 1}"):
            fam.latent_shape(pbase + 1, 8 * s, 8 * s)
    if step > 1 or base > 1:  # a latent frame count off the rule
        z = latent_for(vae, base + 1 if step > 1 else base - 1, 2)
        with pytest.raises(ValueError, match="latent frames="):
            run_strategy("full", vae, z)
    with pytest.raises(ValueError, match=f"height={8 * s + s // 2}"):
        fam.latent_shape(pbase, 8 * s + s // 2, 8 * s)
    z = latent_for(vae, base, 8)[:, :-1]  # one latent channel short
    with pytest.raises(ValueError, match="latent channels="):
        run_strategy("tiled", vae, z, **resolve("tiled", fam, tuple(z.shape[2:])))


@pytest.mark.parametrize("name", NEW_PARAMS)
def test_full_tiled_and_windows_keep_the_frame_rule_and_tiles_err_at_seams(name, tiny):
    """The family's decode() (full), our tiled decode (2x2 tiles, overlap 2 latent px) and, where the family has no
    cache, overlapping windows: all give the registry's shape. Against the full decode the tiled error
    concentrates in the seam band (PSNR there below the interior's) where the decoder has no attention; with
    attention it may spread, and is only printed."""
    fam, vae = get_family(name), tiny(name)
    z = _small_latent(vae, hw=4, seed=1)
    names = [s.name for s in strategies_for(fam) if s.name in ("full", "tiled", "chunked-window")]
    assert {"full", "tiled"} <= set(names)
    assert ("chunked-window" in names) == (not fam.streamable)
    expected = fam.pixel_shape(*z.shape[2:])
    out = {}
    for s in names:
        out[s] = run_strategy(s, vae, z, **resolve(s, fam, tuple(z.shape[2:])))
        assert tuple(out[s].video.shape[1:]) == expected, s
        assert out[s].exact == (s == "full") and torch.isfinite(out[s].video).all()
    assert fam.latent_shape(*out["full"].video.shape[2:]) == tuple(z.shape[1:])
    tiled = out["tiled"]
    band = fam.spatial_compression  # one latent pixel either side of a seam
    gap = seam_band_psnr(out["full"].video, tiled.video, tiled.extra["seams_y"], tiled.extra["seams_x"],
                         band=band)["gap_db"]
    conv = not _has_attention(vae.decoder)
    print(f"{name}: tiled vs full, seam band {gap:.2f} dB below the interior "
          f"({'convolutional' if conv else 'attention in the'} decoder, {fam.norm} norm)")
    if conv and fam.norm == "rms":  # a GroupNorm's statistics span the whole tile: its error need not stay at seams
        assert gap > 1.0, f"{name}: seam band only {gap:.2f} dB worse than the interior"


@pytest.mark.parametrize("name", list(FAMILIES))
def test_pretrained_offline_fails_fast_with_the_download_command(name, monkeypatch, tmp_path):
    fam = get_family(name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache

    def no_network(*args, **kwargs):
        raise AssertionError(f"offline mode opened a connection: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(OSError) as err:
        load_vae(name, weights="pretrained")
    msg = str(err.value)
    assert download_command(fam) in msg and msg.count("hf download") == 1
    assert fam.repo_id in msg and (not fam.subfolder or f"'{fam.subfolder}/*'" in msg)


@pytest.mark.parametrize("name", NEW)
def test_a_tiny_model_survives_save_and_load(name, tiny, tmp_path):
    src = tiny(name)
    src.save_pretrained(tmp_path / (get_family(name).subfolder or "."))
    if getattr(type(src), "_keep_in_fp32_modules", None) and importlib.util.find_spec("accelerate") is None:
        # diffusers loads a class that pins modules to fp32 only through accelerate: a clear error, no traceback maze
        with pytest.raises(OSError, match="pip install accelerate"):
            load_vae(name, weights="pretrained", path=tmp_path)
        return
    back = load_vae(name, weights="pretrained", path=tmp_path)
    a, b = src.state_dict(), back.state_dict()
    assert a.keys() == b.keys()
    for k in a:  # safetensors stores the tensors' bytes: the same bytes come back
        assert_bit_equal(b[k], a[k], proof="save_pretrained/from_pretrained round-trips the stored bytes", what=k)
    assert back.weights_source == "pretrained" and family_of(back).name == name


# ---- one fact per family's own decode() -------------------------------------------------------------------------
def test_hunyuanvideo15_mask_is_n_squared_and_its_budget(tiny, monkeypatch):
    """Its decoder attention builds a dense (N, N) mask, N = latent frames x h x w; measured by hooking the builder.
    The budget function finds the most frames whose mask fits, and one valid count more overflows."""
    name = "hunyuanvideo1.5"
    vae = tiny(name)
    block = type(vae.decoder.mid_block.attentions[0])
    built = []
    original = block.prepare_causal_attention_mask

    def spy(*args, **kwargs):
        mask = original(*args, **kwargs)
        built.append(mask)
        return mask

    monkeypatch.setattr(block, "prepare_causal_attention_mask", staticmethod(spy))
    fam = get_family(name)
    z = latent_for(vae, 2, 4)
    own_decode(vae, z)
    n = 2 * 4 * 4
    assert len(built) == 1 and built[0].shape[-2:] == (n, n)
    frames, size = fam.pixel_frames(2), (4 * fam.spatial_compression, 4 * fam.spatial_compression)
    assert attention_mask_bytes(name, frames, size, torch.float32) == built[0].numel() * built[0].element_size()
    # the function's budget answer is tight: its frame count fits, the next valid count does not
    budget = 4 * 2 ** 30
    best = largest_frames_for_mask(name, (480, 832), budget)
    step = fam.frame_step
    assert attention_mask_bytes(name, best, (480, 832)) <= budget < attention_mask_bytes(name, best + step, (480, 832))
    assert attention_mask_bytes("wan2.1", 17, (64, 64)) == 0
    with pytest.raises(ValueError, match="builds no dense attention mask"):
        largest_frames_for_mask("wan2.1", (64, 64), budget)


def test_minimax_h3_cross_fades_consecutive_clips(tiny, monkeypatch):
    """Two clips (12 latent frames = 2 x 5 + 2): the first clip's frames, then a linear cross-fade over the frames
    the clips share, then the second clip. Each clip call is tagged with a constant offset (0, then 1) so the
    fade's weights show even where both clips decode their shared frames alike (as this tiny config does)."""
    vae = tiny("minimax-h3")
    fam = family_of(vae)
    z = latent_for(vae, 12, 4, seed=3)
    first, second = own_decode(vae, z[:, :, :7]), own_decode(vae, z[:, :, 5:])  # each one clip
    original, calls = type(vae)._decode_clip, []

    def tagged(self, clip):
        calls.append(clip.shape[2])
        return original(self, clip) + (len(calls) - 1)

    monkeypatch.setattr(type(vae), "_decode_clip", tagged)
    whole = own_decode(vae, z)
    assert calls == [7, 7]  # two clips of 5 + 2 latent frames, sharing 2
    assert whole.shape[2] == fam.pixel_frames(12) == 39 and first.shape[2] == fam.pixel_frames(7) == 22
    fade = vae.frame_overlap  # pixel frames shared by consecutive clips
    solo = first.shape[2] - fade  # frames of a clip before its overlap
    w = (torch.arange(fade, dtype=whole.dtype) / fade).view(1, 1, -1, 1, 1)
    assert_video_close(whole[:, :, :solo], first[:, :, :solo], what="first clip")
    assert_video_close(whole[:, :, solo:solo + fade], (1 - w) * first[:, :, solo:] + w * (second[:, :, :fade] + 1),
                       what="cross-fade")
    assert_video_close(whole[:, :, solo + fade:], second[:, :, fade:] + 1, what="second clip")


@pytest.mark.slow
def test_allegro_decodes_only_in_3d_tiles(tiny):
    """decode() has no untiled path; its temporal tiles (6 latent frames, stride 4) blend only where they overlap,
    and a latent off the tile grid leaves frames at zero, which decode_full refuses."""
    vae = tiny("allegro")
    (kt, st), (kh, _), (kw, sw) = own_tile_grid(vae)
    z = latent_for(vae, kt + st, kh, seed=4)  # two temporal tiles, one spatial tile
    with pytest.raises(NotImplementedError), torch.no_grad(), family_decode_settings(vae, spatial_tiling=False):
        call_decode(vae, z)
    whole = own_decode(vae, z)
    first = decoder_pass(vae, z[:, :, :kt])
    t = family_of(vae).temporal_compression
    alone = st * t  # pixel frames of the first tile before the second starts
    assert_video_close(whole[:, :, :alone], first[:, :, :alone], atol=FP32_EXACT, what="first tile before the overlap")
    assert (whole[:, :, alone:kt * t] - first[:, :, alone:]).abs().max() > 1e-4  # blended with the second tile
    off = z[:, :, :kt + 2]
    assert own_decode(vae, off)[:, :, kt * t:].abs().max() == 0  # diffusers leaves uncovered frames at zero
    assert sw > 1
    with pytest.raises(ValueError, match="latent width=.* off allegro's decode\\(\\) tile grid"):
        decode_full(vae, latent_for(vae, kt, kw + 1))


def test_cosmos_ignores_its_tiling_switches(tiny):
    """enable_tiling() sets use_tiling and tile sizes smaller than the video, and decode() does not change a bit."""
    vae = tiny("cosmos")
    z = latent_for(vae, 2, 4, seed=5)
    ref = own_decode(vae, z)
    s = family_of(vae).spatial_compression
    try:
        vae.enable_tiling(tile_sample_min_height=2 * s, tile_sample_min_width=2 * s, tile_sample_stride_height=s,
                          tile_sample_stride_width=s, tile_sample_min_num_frames=4, tile_sample_stride_num_frames=2)
        assert vae.use_tiling and vae.tile_sample_min_height < ref.shape[-2]
        with torch.no_grad():
            tiled = call_decode(vae, z)
    finally:
        vae.use_tiling = False
    assert_bit_equal(tiled, ref, what="Cosmos decode with tiling enabled",
                     proof="_decode never reads use_tiling: the same kernels on the same input in one process")


def test_svd_decodes_per_frame_latents_with_temporal_mixing(tiny):
    """One latent per frame (no temporal compression), decoded as a clip: changing the last frame's latent changes
    the first frame's pixels (its temporal layers mix the clip), and a frame decoded alone differs from in the clip."""
    vae = tiny("svd")
    fam = family_of(vae)
    z = latent_for(vae, 3, 4, seed=6)
    out = own_decode(vae, z)
    assert out.shape[2] == fam.pixel_frames(3) == 3 and fam.temporal_compression == 1 and fam.per_frame_latents
    z2 = z.clone()
    z2[:, :, -1] += 1.0
    assert (own_decode(vae, z2)[:, :, 0] - out[:, :, 0]).abs().max() > 1e-4
    assert (own_decode(vae, z[:, :, :1])[:, :, 0] - out[:, :, 0]).abs().max() > 1e-4


GRID = [f.name for f in FAMILIES.values() if not f.causal_frames]
GRID_PARAMS = [pytest.param(n, marks=pytest.mark.slow) if get_family(n).decode_tiling == "only" else n for n in GRID]


@pytest.mark.parametrize("name", GRID_PARAMS)
def test_windows_on_a_frame_grid_stream_whole_clips_and_blend_the_context_frames(name, tiny):
    """On a fixed frame grid (a latent prefix is not a video prefix) chunked-window decodes whole windows on the grid:
    a first valid clip, then each chunk behind the fewest latent frames of context that keep the window a valid clip.
    Two windows: frames only the first covers are its decode, frames only the second covers are the last frames of
    its decode (the pipeline's WindowStream hands out the same), and the frames both cover are blended between the
    two; the result is inexact against the family's decode(). The window is refused before any decode where the
    context would make it an invalid clip."""
    fam, vae = get_family(name), tiny(name)
    chunk, ctx = stream_chunk(fam), window_context(fam)
    first = fam.frame_rule[0] if fam.frame_rule[0] > 1 else chunk  # per-frame latents: a first clip of one chunk
    grid = own_tile_grid(vae)
    z = latent_for(vae, first + chunk, 4 if grid is None else grid[1][0], seed=7)
    params = resolve("chunked-window", fam, tuple(z.shape[2:]))
    assert params["chunk"] == chunk and params["overlap"] == ctx
    assert stream_plan(fam, z.shape[2], chunk) == [(0, first), (first, first + chunk)]
    out = run_strategy("chunked-window", vae, z, **params)
    total = fam.pixel_frames(first + chunk)
    assert out.video.shape[2] == total and not out.exact and len(out.chunk_frames) >= 2
    win1, win2 = plain_decode(vae, z[:, :, :first]), plain_decode(vae, z[:, :, first - ctx:])
    shared = win1.shape[2] + win2.shape[2] - total  # pixel frames both windows decode
    assert shared > 0
    proof = "the same decode() call on the same latent slice, in one process"
    assert_bit_equal(out.video[:, :, :total - win2.shape[2]], win1[:, :, :-shared], proof=proof, what="first window")
    assert_bit_equal(out.video[:, :, win1.shape[2]:], win2[:, :, shared:], proof=proof, what="second window")
    w = blend_ramp(shared, "linear").to(win1).view(1, 1, -1, 1, 1)
    assert_video_close(out.video[:, :, win1.shape[2] - shared:win1.shape[2]],
                       w * win2[:, :, :shared] + (1 - w) * win1[:, :, -shared:], what="blended context frames")
    stream = WindowStream(vae)
    streamed = torch.cat([stream.step(z[:, :, a:b]) for a, b in stream_plan(fam, z.shape[2], chunk)], dim=2)
    assert_bit_equal(streamed[:, :, win1.shape[2]:], out.video[:, :, win1.shape[2]:], proof=proof,
                     what="the pipeline's window stream after the shared frames")
    if ctx > 1 or fam.frame_rule[1] > 1:
        with pytest.raises(ValueError, match="window length"):
            resolve("chunked-window", fam, tuple(z.shape[2:]), overlap=ctx + 1)


def test_kvae_frame_rule_refuses_counts_whose_last_segment_decode_drops_frames(tiny):
    """KVAE's decode() cuts the latent into segments of 5 then 4 latent frames; a last segment of one latent frame
    decodes to one pixel frame instead of four (no temporal upsampling), so those counts are refused by the rule and
    every count the rule accepts decodes to exactly the frames it promises."""
    vae = tiny("kvae")
    fam = family_of(vae)
    refused = []
    for t in range(1, 12):
        out = own_decode(vae, latent_for(vae, t, 2, seed=t))
        try:
            fam.check_latent_frames(t)
        except ValueError as err:
            assert "segment" in str(err) and f"{fam.latent_frames_at_least(t)}" in str(err)
            refused.append(t)
            assert out.shape[2] < fam.pixel_frames(t), (t, out.shape)  # what the rule protects against
            continue
        assert out.shape[2] == fam.pixel_frames(t), (t, out.shape)
    assert refused == [6, 10]
    assert [f for f in fam.valid_frame_counts(45)] == [1, 5, 9, 13, 17, 25, 29, 33, 41, 45]
    with pytest.raises(ValueError, match="frames=21"):
        fam.check_frames(21)
    calls = []
    hook = vae.decoder.register_forward_hook(lambda m, args, out: calls.append(out.shape[2]))
    try:
        own_decode(vae, latent_for(vae, 11, 2, seed=0))
    finally:
        hook.remove()
    assert (len(calls), max(calls)) == fam.own_decode_calls(11) == (3, 17)  # segments of 5, 4, 2 latent frames


# ---- cost: parameters and FLOPs, computed --------------------------------------------------------------------
def test_cost_cache_matches_a_recount():
    """Parameters of every family recounted on meta equal the cache; one family's FLOPs recounted equal it too."""
    cached = read_cost_file()
    assert set(cached) == set(FAMILIES), "run `python -m vaestudy.bench.cost` to refresh registry/cost.json"
    for name, fam in FAMILIES.items():
        assert parameter_counts(fam) == (cached[name].params, cached[name].decoder_params), name
    assert compute_cost("cosmos") == cached["cosmos"]
    assert count_latent_frames(get_family("minimax-h3")) == 7


def test_counting_on_meta_leaves_real_models_alone():
    """Building on meta must not leak: a real model built afterwards has every tensor on the CPU (a class module
    first imported inside the meta context would otherwise keep module-level tables on meta)."""
    for fam in FAMILIES.values():
        parameter_counts(fam, "tiny")
    for name in ("cosmos", "wan2.2"):
        vae = load_vae(name, "tiny")
        assert {t.device.type for t in [*vae.parameters(), *vae.buffers()]} == {"cpu"}, name


def test_random_weights_refuse_a_model_above_the_budget():
    with pytest.raises(ValueError, match=r"minimax-h3.* GiB of fp32 weights"):
        load_vae("minimax-h3", "random", max_bytes=2 ** 30)


def test_decoder_attention_classes_read_the_decoder_modules(tiny):
    """The attention classes notebook 01 names when no tile overlap meets the tolerance: read from the loaded decoder
    (a tiny config may leave out a layer the released one has), and the registry's ``attention_block`` among them."""
    from vaestudy.decode.common import decoder_attention_classes

    assert decoder_attention_classes(tiny("cogvideox")) == []  # convolutions and GroupNorm only
    assert decoder_attention_classes(tiny("hunyuanvideo1.5")) == ["HunyuanVideo15AttnBlock"]
    for name in ("wan2.1", "wan2.2", "minimax-h3"):
        found = decoder_attention_classes(tiny(name))
        assert found and all("att" in n.lower() for n in found)
        assert get_family(name).attention_block in (None, *found)
    assert get_family("wan2.2").attention_block == "WanAttentionBlock"  # one class, one mid-block attention
