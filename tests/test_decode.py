"""Exactness facts of the decode strategies, on real diffusers classes."""

import pytest
import torch

from conftest import assert_bit_equal, assert_video_close, latent_for
from vaestudy.decode import (
    TilePlan,
    chunk_plan,
    decode_chunked,
    decode_diffusers_tiled,
    decode_full,
    decode_single_pass,
    decode_tiled,
    decode_tiled_chunked,
    framewise_groupnorm,
    iter_chunked,
)
from vaestudy.measure.oracle import compare, seam_concentration
from vaestudy.registry.families import get_family
from vaestudy.registry.load import load_vae

EXACT = 1e-5  # fp32


@pytest.fixture(scope="module")
def wan_case(tiny):
    vae = tiny("wan2.1")
    z = latent_for(vae, 5, 4)
    return vae, z, decode_full(vae, z).video


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_wan_chunked_with_cache_equals_full_for_every_chunk_size(wan_case, k):
    vae, z, ref = wan_case
    res = decode_chunked(vae, z, k)
    assert res.exact and res.video.shape == ref.shape
    assert_video_close(res.video, ref, atol=EXACT, what=f"chunked k={k} vs full")
    assert sum(res.chunk_frames) == ref.shape[2]


def test_wan_chunks_stream_in_order_and_first_frame_comes_first(wan_case):
    vae, z, ref = wan_case
    chunks = list(iter_chunked(vae, z, 1))
    assert [c.start for c in chunks] == [0, 1, 5, 9, 13]
    assert chunks[0].frames.shape[2] == 1
    assert all(a.elapsed <= b.elapsed for a, b in zip(chunks, chunks[1:]))


def test_wan_naive_chunks_without_cache_are_not_exact(wan_case):
    vae, z, ref = wan_case
    res = decode_chunked(vae, z, 1, mode="naive")
    assert not res.exact and res.video.shape == ref.shape
    err = compare(ref, res.video)
    assert err["max_abs"] > 1e-2
    assert err["frame_max_abs"][0] <= EXACT  # the first chunk has nothing to miss


@pytest.mark.slow
def test_wan_full_size_random_config_chunked_equals_full():
    vae = load_vae("wan2.1", "random")
    assert vae.weights_source == "random"
    z = latent_for(vae, 3, 4)
    ref = decode_full(vae, z).video
    for k in (1, 2, 3):
        assert_video_close(decode_chunked(vae, z, k).video, ref, atol=EXACT, what=f"chunked k={k} vs full")


def test_cogvideox_groupnorm_makes_chunks_inexact_and_framewise_norm_restores(tiny):
    vae = tiny("cogvideox")
    z = latent_for(vae, 5, 4)
    single = decode_single_pass(vae, z).video
    chunked = decode_chunked(vae, z, 2)
    assert not chunked.exact
    pooled_err = compare(single, chunked.video)["max_abs"]
    assert pooled_err > 1e-3  # statistics span the chunk
    with framewise_groupnorm(vae) as n:
        assert n > 0
        assert_video_close(decode_chunked(vae, z, 2).video, decode_single_pass(vae, z).video, atol=EXACT,
                           what="chunks of 2 vs one pass, per-frame GroupNorm")
    # the patch is undone: the same single-pass decode again, bit for bit
    assert_bit_equal(decode_single_pass(vae, z).video, single, what="single pass after the patch",
                     proof="the unpatched model runs the same kernels on the same input in one process")


def test_tiled_error_shrinks_with_overlap_and_sits_at_seams(tiny):
    vae = tiny("wan2.1")
    z = latent_for(vae, 2, 12)
    ref = decode_full(vae, z).video
    errs = []
    for o in (0, 2, 4):
        plan = TilePlan.for_count((12, 12), 2, o)
        res = decode_tiled(vae, z, tile=plan.tile, overlap=o)
        assert res.video.shape == ref.shape and res.params["effective_overlap"] == (o, o)
        c = compare(ref, res.video, seams_y=res.extra["seams_y"], seams_x=res.extra["seams_x"])
        errs.append(c["mean_abs"])
        assert seam_concentration(c["seam_bands"], near=8) > 1.2
    assert errs[0] > errs[1] > errs[2]


def test_single_tile_is_the_full_decode(tiny):
    vae = tiny("wan2.1")
    z = latent_for(vae, 2, 4)
    res = decode_tiled(vae, z, tile=4, overlap=0)
    assert res.exact
    # proof of bit equality: one tile covering the latent is the same own_decode call on a view with the same shape and
    # strides, in the same process and thread count; blending multiplies by a weight of exactly 1.0, adds to 0.0 and
    # divides by a weight sum of exactly 1.0, each exact in IEEE arithmetic
    assert_bit_equal(res.video, decode_full(vae, z).video, what="one tile vs decode_full",
                     proof="the same kernel calls on the same inputs, then *1, +0 and /1")


def test_tiled_chunked_equals_tiled_for_wan(tiny):
    vae = tiny("wan2.1")
    z = latent_for(vae, 3, 6)
    a = decode_tiled(vae, z, tile=4, overlap=2).video
    b = decode_tiled_chunked(vae, z, chunk=1, tile=4, overlap=2)
    assert_video_close(b.video, a, atol=EXACT, what="tiled+chunked vs tiled")
    assert b.chunk_frames == [1, 4, 4]


@pytest.mark.parametrize("name", ["hunyuanvideo", "ltx-video"])
def test_non_causal_families_stream_by_windows_only(tiny, name):
    vae = tiny(name)
    fam = get_family(name)
    z = latent_for(vae, 3, 2 if fam.spatial_compression == 32 else 4)
    with pytest.raises(ValueError, match="no temporal cache"):
        decode_chunked(vae, z, 1)
    res = decode_chunked(vae, z, 1, mode="window", overlap=2)
    assert not res.exact
    assert res.video.shape == decode_full(vae, z).video.shape


def test_diffusers_tiling_traps_are_caught(tiny):
    vae = tiny("cogvideox")
    z = latent_for(vae, 1, 16)
    with pytest.raises(ValueError, match="treats 0"):
        decode_diffusers_tiled(vae, z, tile_px=64, stride_px=0)
    # CogVideoX's tiled decode does not crop: a mismatched tile/stride comes back the wrong size
    # an overlap factor of 0 (stride == tile) would silently become the default 1/6
    with pytest.raises(ValueError, match="contain 0"):
        decode_diffusers_tiled(vae, z, tile_px=64, stride_px=64)
    with pytest.raises(RuntimeError, match="returned"):
        decode_diffusers_tiled(vae, z, tile_px=48, stride_px=40)
    bad = decode_diffusers_tiled(vae, z, tile_px=48, stride_px=40, check_size=False)
    assert not bad.extra["size_ok"] and bad.video.shape[-1] != 128
    assert not vae.use_tiling  # the model is restored
    ok = decode_diffusers_tiled(vae, z, tile_px=64, stride_px=48)
    assert ok.extra["size_ok"] and ok.params["tiling_applied"]


def test_cogvideox_chunks_must_be_even():
    with pytest.raises(ValueError, match="chunk=3 is invalid for cogvideox"):
        chunk_plan(get_family("cogvideox"), 7, 3)
    assert chunk_plan(get_family("cogvideox"), 7, 2) == [(0, 1), (1, 3), (3, 5), (5, 7)]
    assert chunk_plan(get_family("wan2.1"), 6, 2) == [(0, 2), (2, 4), (4, 6)]


@pytest.mark.parametrize("make, match", [
    (lambda v: torch.randn(16, 3, 4, 4), "5-D"),
    (lambda v: torch.randn(1, 8, 3, 4, 4), "channels=8"),
    (lambda v: torch.randn(1, 16, 3, 4, 4, dtype=torch.float64), "float64"),
    (lambda v: torch.full((1, 16, 3, 4, 4), float("nan")), "NaN"),
])
def test_bad_latents_are_rejected_before_decoding(tiny, make, match):
    vae = tiny("wan2.1")
    with pytest.raises(ValueError, match=match):
        decode_full(vae, make(vae))


@pytest.mark.parametrize("kwargs, match", [
    ({"tile": 4, "overlap": 4}, "larger than overlap"),
    ({"tile": 4, "overlap": -1}, "negative"),
    ({"tile": 9, "overlap": 1}, "exceeds the latent"),
    ({"tile": 4, "overlap": 1, "blend": "gauss"}, "blend='gauss'"),
])
def test_bad_tile_plans_are_rejected(tiny, kwargs, match):
    vae = tiny("wan2.1")
    with pytest.raises(ValueError, match=match):
        decode_tiled(vae, latent_for(vae, 1, 8), **kwargs)


@pytest.mark.parametrize("chunk", [0, -2, 1.5])
def test_bad_chunk_sizes_are_rejected(tiny, chunk):
    vae = tiny("wan2.1")
    with pytest.raises(ValueError, match="chunk="):
        decode_chunked(vae, latent_for(vae, 3, 2), chunk)


def test_cogvideox_latent_frame_count_checked(tiny):
    vae = tiny("cogvideox")
    with pytest.raises(ValueError, match="latent frames=4"):
        decode_full(vae, latent_for(vae, 4, 2))
