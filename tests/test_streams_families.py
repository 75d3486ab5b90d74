"""Streaming with each family's own cache (issue 20): chunks carried through the class's cache protocol vs its decode().

Tiny random-weight configs of the real diffusers classes, fp32. Tolerance: ``FP32_EXACT`` (1e-5 max abs) where the
stream performs the decode's arithmetic in another grouping (decoder calls over other frame groups: the same sums,
another summation order); an inexact stream must differ by more than that, and the tests say where and why.
"""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKLMagvit

from conftest import FP32_EXACT, assert_video_close, latent_for
from vaestudy.decode.chunked import decode_chunked
from vaestudy.decode.common import own_decode
from vaestudy.decode.streams import open_stream
from vaestudy.registry.families import get_family

# family -> (latent frames, latent height = width) of the test latent: the fewest that show the property
SIZES = {"wan2.2": (3, 1), "easyanimate": (3, 1), "kvae": (9, 1), "vidtok": (3, 1)}


@pytest.fixture(scope="module")
def case(tiny):
    """(model, latent, the family's own decode()) per family, built once."""
    made = {}

    def get(name):
        if name not in made:
            vae = tiny(name)
            frames, hw = SIZES[name]
            z = latent_for(vae, frames, hw, seed=0)
            made[name] = vae, z, own_decode(vae, z)
        return made[name]

    return get


def _frame_errors(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    return (a - b).abs().amax(dim=(0, 1, 3, 4)).tolist()


@pytest.mark.parametrize("name", ["wan2.2", "easyanimate"])
@pytest.mark.parametrize("chunk", [1, 2])
def test_stream_with_the_family_cache_is_its_decode(case, name, chunk):
    """Wan 2.2 (feat_cache, patchified residual decoder) and EasyAnimate (prev_features, GroupNorm frame by frame):
    per-pixel or per-frame norms and causal caches, so the stream is decode()'s arithmetic for every chunk size."""
    vae, z, full = case(name)
    assert get_family(name).streams_exactly
    res = decode_chunked(vae, z, chunk)
    assert res.exact
    assert_video_close(res.video, full, atol=FP32_EXACT, what=f"{name} chunk={chunk} vs decode()")


def test_easyanimate_exactness_rests_on_its_framewise_groupnorm():
    """The registry's norm_pools_frames=False for EasyAnimate holds for spatial_group_norm=True (the class default):
    built with spatial_group_norm=False (GroupNorm over a call's frames, trilinear temporal upsampling) the same
    stream is exact only at chunk 1, decode()'s own one frame per call."""
    fam = get_family("easyanimate")
    torch.manual_seed(0)
    vae = AutoencoderKLMagvit(**{**fam.tiny_config, "spatial_group_norm": False}).eval()
    z = latent_for(vae, 3, 1, seed=0)
    full = own_decode(vae, z)
    assert_video_close(decode_chunked(vae, z, 1).video, full, atol=FP32_EXACT, what="pooled norm, chunk=1")
    assert float((decode_chunked(vae, z, 2).video - full).abs().max()) > 100 * FP32_EXACT


@pytest.mark.parametrize("name, chunk", [("wan2.2", 1), ("easyanimate", 1), ("kvae", 4), ("vidtok", 1)])
def test_naive_chunks_without_the_cache_differ(case, name, chunk):
    """Every chunk decoded as its own clip (no cache carried) is far from decode(): the cache carries real state.
    (For KVAE even at chunk 4, the chunk at which carrying its cache is exact.)"""
    vae, z, full = case(name)
    naive = decode_chunked(vae, z, chunk, mode="naive").video
    assert naive.shape == full.shape
    assert float((naive - full).abs().max()) > 100 * FP32_EXACT


def test_kvae_cached_groupnorm_holds_flags_not_statistics(case):
    """KVAE's "cached GroupNorm statistics" are markers: after a call its norm cache holds mean = var = 1 (plain ints
    saying "a segment was seen"), never a tensor, and every call normalises with its own frames' statistics."""
    vae, z, _ = case("kvae")
    stream = open_stream(vae)
    with torch.no_grad():
        stream.step(z[:, :, :2])

    def norm_caches(d):
        for v in d.values():
            if isinstance(v, dict):
                if "mean" in v or "var" in v:
                    yield v
                else:
                    yield from norm_caches(v)

    found = list(norm_caches(stream.cache))
    assert found and all(c["mean"] == 1 and c["var"] == 1 and not torch.is_tensor(c["mean"]) for c in found)


def test_kvae_streams_exactly_only_on_its_own_segments(case):
    """The answer to the KVAE question: carrying its cache is exact only when the chunks are decode()'s own segments
    (5, then 4 latent frames: 17, then 16 pixel frames); other chunks pool GroupNorm statistics over other frames, and
    pixel frame 0, which no cache reaches, already differs."""
    vae, z, full = case("kvae")
    fam = get_family("kvae")
    assert not fam.streams_exactly
    aligned = decode_chunked(vae, z, 4).video  # plan (0, 5), (5, 9): decode()'s segments
    assert_video_close(aligned, full, atol=FP32_EXACT, what="kvae chunk=4 (its own segments) vs decode()")
    other = decode_chunked(vae, z, 2)  # plan (0, 3), (3, 5), ...
    assert not other.exact and other.video.shape == full.shape
    assert _frame_errors(other.video, full)[0] > 100 * FP32_EXACT


def test_kvae_decode_drops_frames_when_its_last_segment_holds_one_latent_frame(case):
    """A surprise of the class: decode() of 6 latent frames (segments 5 + 1) returns 18 pixel frames, not 21, because
    a one-frame call skips temporal upsampling. The registry's frame rule refuses such counts (the full decode every
    stream is compared with cannot make them), so the stream refuses them too, before decoding."""
    vae, _, _ = case("kvae")
    z6 = latent_for(vae, 6, 2, seed=2)  # 2x2: a one-frame call at 1x1 would leave GroupNorm one value per channel
    assert own_decode(vae, z6).shape[2] == 18 < get_family("kvae").pixel_frames(6) == 21
    with pytest.raises(ValueError, match="latent frames=6 .*segment of 1 latent frame"):
        decode_chunked(vae, z6, 2)


@pytest.fixture(scope="module")
def vidtok_own_chunks(case):
    """VidTok's own chunked decode: its tiled_decode with one tile covering the latent (only time is chunked)."""
    vae, z, _ = case("vidtok")
    saved = {k: getattr(vae, k) for k in ("use_tiling", "tile_latent_min_height", "tile_latent_min_width",
                                          "tile_sample_min_height", "tile_sample_min_width")}
    try:
        vae.use_tiling = True
        vae.tile_latent_min_height = vae.tile_latent_min_width = z.shape[-1]
        vae.tile_sample_min_height = vae.tile_sample_min_width = z.shape[-1] * get_family("vidtok").spatial_compression
        with torch.no_grad():
            return vae.decode(z)  # (own_decode would switch the tiling off)
    finally:
        for k, v in saved.items():
            setattr(vae, k, v)
        vae._set_cache_offset([vae.decoder], 0)  # tiled_decode leaves its offsets set


@pytest.mark.parametrize("chunk", [1, 2])
def test_vidtok_stream_is_its_own_chunk_protocol_and_differs_after_frame_0(case, vidtok_own_chunks, chunk):
    """VidTok's stream follows the class's own chunk protocol (tiled_decode, one spatial tile) to fp32, whatever the
    chunk; both differ from the one-pass decode() after pixel frame 0 (stream_caveat: the upsampler's look-ahead)."""
    vae, z, full = case("vidtok")
    own_chunks = vidtok_own_chunks
    assert not get_family("vidtok").streams_exactly
    res = decode_chunked(vae, z, chunk)
    assert not res.exact
    assert_video_close(res.video, own_chunks, atol=FP32_EXACT, what=f"vidtok chunk={chunk} vs its tiled_decode")
    err = _frame_errors(res.video, full)
    assert err[0] <= FP32_EXACT and max(err[1:]) > 100 * FP32_EXACT


@pytest.mark.parametrize("name", ["easyanimate", "vidtok"])
def test_streams_of_one_model_keep_their_own_module_state(case, name):
    """Families that keep the cache in module attributes: two interleaved streams of one model (as one per spatial
    tile) each equal a stream alone, and the modules are left cleared (so decode() starts fresh)."""
    vae, z, _ = case(name)
    z2 = latent_for(vae, z.shape[2], z.shape[-1], seed=1)
    alone = decode_chunked(vae, z2, 1).video
    with torch.no_grad():
        a, b = open_stream(vae), open_stream(vae)
        outs = [[], []]
        last = z.shape[2] - 1
        for t in range(z.shape[2]):
            outs[0].append(a.step(z[:, :, t:t + 1], ahead=z[:, :, t + 1:t + 2] if t < last else None))
            outs[1].append(b.step(z2[:, :, t:t + 1], ahead=z2[:, :, t + 1:t + 2] if t < last else None))
    assert_video_close(torch.cat(outs[1], dim=2), alone, atol=FP32_EXACT, what=f"{name} interleaved stream")
    state = a.STATE
    for m in vae.decoder.modules():
        for attr, cleared in state.items():
            if hasattr(m, attr):
                assert getattr(m, attr) is cleared or getattr(m, attr) == cleared


@pytest.mark.parametrize("name, chunk, match", [
    ("kvae", 1, r"chunk=1 is invalid for kvae: chunks must hold at least 2 latent frames \(valid: 2, 3, \.\.\.\)"),
    ("easyanimate", 0, r"chunk=0 must be an integer >= 1"),
    ("vidtok", 1.5, r"chunk=1.5 must be an integer >= 1"),
])
def test_a_bad_chunk_is_refused_before_any_decode(case, monkeypatch, name, chunk, match):
    vae, z, _ = case(name)

    def no_decode(*args, **kwargs):
        raise AssertionError("the decoder ran before the chunk was checked")

    monkeypatch.setattr(vae.decoder, "forward", no_decode)
    with pytest.raises(ValueError, match=match):
        decode_chunked(vae, z, chunk)
