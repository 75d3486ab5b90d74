"""Latent-grid versus pixel-grid blending: the pixel grid reproduces the package's own strategies."""

import pytest
import torch

from conftest import assert_video_close, latent_for
from vaestudy.decode import decode_chunked, decode_tiled
from vaestudy.decode.latent_blend import (
    decode_tiled_grid,
    decode_window_grid,
    tile_weight_maps,
)
from vaestudy.decode.tiled import TilePlan
from vaestudy.measure.oracle import compare


def test_latent_grid_weights_are_staircases_that_sum_to_one():
    plan = TilePlan.build((8, 8), 5, 2)
    for grid in ("pixel", "latent"):
        maps = tile_weight_maps(plan, 8, "linear", grid)
        total = torch.zeros(64, 64, dtype=torch.float64)
        for (y, x, h, w), m in zip(plan.tiles, maps):
            total[y * 8:(y + h) * 8, x * 8:(x + w) * 8] += m
        assert torch.allclose(total, torch.ones_like(total))
    lat = tile_weight_maps(plan, 8, "linear", "latent")[1][0]  # second tile along x: ramps in at its left
    assert len(set(lat[:16].tolist())) == 2 and len(set(tile_weight_maps(plan, 8, "linear", "pixel")[1][0][:16].tolist())) == 16


def test_pixel_grid_tiles_equal_decode_tiled(tiny):
    vae = tiny("wan2.1")
    z = latent_for(vae, 2, 6)
    a = decode_tiled(vae, z, tile=4, overlap=2, blend="cosine").video
    b = decode_tiled_grid(vae, z, tile=4, overlap=2, blend="cosine", grid="pixel").video
    assert_video_close(b, a, atol=1e-6, what="pixel-grid tiles vs decode_tiled")  # the same tiles, blended by other code
    c = decode_tiled_grid(vae, z, tile=4, overlap=2, blend="cosine", grid="latent")
    assert c.video.shape == a.shape and compare(a, c.video)["max_abs"] > 0


@pytest.mark.parametrize("name,frames,chunk,overlap", [("wan2.1", 5, 1, 2), ("cogvideox", 9, 4, 3)])
def test_pixel_grid_windows_equal_decode_chunked_window(tiny, name, frames, chunk, overlap):
    vae = tiny(name)
    z = latent_for(vae, frames, 2)
    a = decode_chunked(vae, z, chunk, mode="window", overlap=overlap)
    b = decode_window_grid(vae, z, chunk, overlap=overlap, grid="pixel")
    # frame 0 may differ where a second window also starts at the video start (it is blended here,
    # handed out from the first window there); CogVideoX's GroupNorm makes that frame depend on the window
    assert_video_close(b.video[:, :, 1:], a.video[:, :, 1:], atol=1e-6, what="pixel-grid windows vs decode_chunked window")
    assert sum(b.chunk_frames) == a.frames
    c = decode_window_grid(vae, z, chunk, overlap=overlap, grid="latent")
    assert c.video.shape == a.video.shape


def test_bad_grid_names_the_parameter(tiny):
    vae = tiny("wan2.1")
    z = latent_for(vae, 2, 6)
    with pytest.raises(ValueError, match="grid"):
        decode_tiled_grid(vae, z, 4, 2, grid="feature")
    with pytest.raises(ValueError, match="overlap"):
        decode_window_grid(vae, z, 1, overlap=0)
