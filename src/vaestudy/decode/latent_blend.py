"""Blending on the latent grid versus the pixel grid, for spatial tiles and temporal windows.

What "latent-space blending" can honestly mean for decoding one latent: two tiles (or two
temporal windows) read *the same* latent values in their overlap, so mixing the latents
themselves changes nothing; the tiles disagree only after the decoder, in pixels.  What a
latent-space blend really changes is the grid its weights live on: a ramp with one weight per
latent pixel (or latent frame), each weight covering the ``s x s`` pixels (or the ``t`` pixel
frames) that latent position decodes to, i.e. a staircase, against the pixel-space ramp with
one weight per output pixel (or frame).  (The FastVideo bug quoted in ``FINDINGS.md`` is the
other way to mix the spaces: an extent computed in one space applied in the other.)

``grid="pixel"`` reproduces :func:`vaestudy.decode.decode_tiled` and
``decode_chunked(mode="window")`` exactly; ``grid="latent"`` is the staircase.
"""

from __future__ import annotations

from typing import Iterator

import torch

from vaestudy.clock import Clock
from vaestudy.decode.common import (
    Chunk,
    DecodeResult,
    collect,
    model_device_dtype,
    own_decode,
    plain_decode,
    validate_latent,
)
from vaestudy.decode.streams import check_windows, chunk_plan
from vaestudy.decode.tiled import BLENDS, TileBlender, TilePlan, blend_ramp
from vaestudy.registry.families import family_of

GRIDS = ("pixel", "latent")


def _check(blend: str, grid: str) -> None:
    if blend not in BLENDS:
        raise ValueError(f"blend={blend!r} is unknown; valid: {', '.join(BLENDS)}")
    if grid not in GRIDS:
        raise ValueError(f"grid={grid!r} is unknown; valid: {', '.join(GRIDS)}")


def tile_weight_maps(plan: TilePlan, scale: int, blend: str, grid: str) -> list[torch.Tensor]:
    """Per-tile (H, W) weights in output pixels; on the latent grid each latent pixel's block shares one weight."""
    _check(blend, grid)
    if grid == "pixel":
        return plan.weights(scale, blend)
    return [m.repeat_interleave(scale, 0).repeat_interleave(scale, 1) for m in plan.weights(1, blend)]


def _iter_tiled(vae, z, plan: TilePlan, blend: str, grid: str) -> Iterator[Chunk]:
    family = family_of(vae)
    device, _ = model_device_dtype(vae)
    s = family.spatial_compression
    sw = Clock(device)
    blender = None
    for i, (y, x, h, w) in enumerate(plan.tiles):
        out = own_decode(vae, z[..., y:y + h, x:x + w])
        if blender is None:
            blender = TileBlender(plan, s, blend, out, out.shape[2])
            blender.maps = [m.to(out) for m in tile_weight_maps(plan, s, blend, grid)]
        blender.add(i, out)
    video = blender.result()
    dt, el = sw.lap()
    yield Chunk(video, 0, dt, el)


def decode_tiled_grid(vae, z: torch.Tensor, tile=8, overlap=2, blend: str = "linear",
                      grid: str = "latent") -> DecodeResult:
    """Tiled decode (sizes in latent pixels) blended with weights on the ``grid`` ("pixel" or "latent")."""
    family = validate_latent(vae, z)
    _check(blend, grid)
    plan = TilePlan.build(tuple(z.shape[-2:]), tile, overlap)
    s = family.spatial_compression
    params = {"tile": plan.tile, "overlap": plan.overlap, "blend": blend, "grid": grid, "tiles": len(plan.tiles)}
    extra = {"plan": plan, "seams_y": plan.seams(0, s), "seams_x": plan.seams(1, s)}
    return collect("tiled", _iter_tiled(vae, z, plan, blend, grid), exact=len(plan.tiles) == 1, params=params,
                   vae=vae, extra=extra)


# ---------------------------------------------------------------------------------------------
# temporal windows
# ---------------------------------------------------------------------------------------------

def _latent_index(family, pixel_frames: torch.Tensor) -> torch.Tensor:
    """Latent frame each pixel frame decodes from (frame 0 <- latent 0, then t frames per latent frame)."""
    t = family.temporal_compression
    return torch.where(pixel_frames == 0, 0, (pixel_frames - 1) // t + 1)


def _ramp(family, start: int, n: int, blend: str, grid: str) -> torch.Tensor:
    """Incoming weights over the n shared pixel frames that begin at pixel frame ``start``."""
    if grid == "pixel":
        return blend_ramp(n, blend)
    lat = _latent_index(family, torch.arange(start, start + n))
    steps = blend_ramp(int(lat.max() - lat.min()) + 1, blend)
    return steps[lat - lat.min()]


def window_ranges(family, latent_frames: int, chunk: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(latent start, latent stop, first pixel frame kept, pixel stop) of every window."""
    px = family.latent_to_pixel_frames
    out = []
    for a, b in chunk_plan(family, latent_frames, chunk):
        s = max(a - overlap, 0)
        cover = 0 if s == 0 else px(0, s + 1)[1]  # a window's own first frame stands for a video start: dropped
        out.append((s, b, cover, px(0, b)[1]))
    return out


def _iter_window(vae, z, chunk: int, overlap: int, blend: str, grid: str) -> Iterator[Chunk]:
    family = family_of(vae)
    device, _ = model_device_dtype(vae)
    wins = window_ranges(family, z.shape[2], chunk, overlap)
    total = wins[-1][3]
    sw = Clock(device)
    acc = wsum = None
    done = 0
    with torch.no_grad():
        for j, (s, b, cs, ce) in enumerate(wins):
            out = plain_decode(vae, z[:, :, s:b])
            if s > 0:
                out = out[:, :, 1:]
            if acc is None:
                acc = out.new_zeros(*out.shape[:2], total, *out.shape[3:])
                wsum = torch.zeros(total, dtype=out.dtype, device=out.device)
            w = torch.ones(ce - cs, dtype=torch.float64)
            if j > 0 and wins[j - 1][3] > cs:
                n = wins[j - 1][3] - cs
                w[:n] = _ramp(family, cs, n, blend, grid)
            if j + 1 < len(wins) and ce > wins[j + 1][2]:
                n = ce - wins[j + 1][2]
                w[-n:] = torch.minimum(w[-n:], 1 - _ramp(family, ce - n, n, blend, grid))
            w = w.to(out)
            acc[:, :, cs:ce] += out * w.view(1, 1, -1, 1, 1)
            wsum[cs:ce] += w
            final = wins[j + 1][2] if j + 1 < len(wins) else total  # frames no later window touches
            if final > done:
                frames = acc[:, :, done:final] / wsum[done:final].view(1, 1, -1, 1, 1)
                dt, el = sw.lap()
                yield Chunk(frames, done, dt, el)
                done = final


def decode_window_grid(vae, z: torch.Tensor, chunk: int | None = None, overlap: int = 2, blend: str = "linear",
                       grid: str = "latent") -> DecodeResult:
    """Overlapping independent temporal windows (no cache) blended with weights on ``grid``.

    With ``grid="pixel"`` this is ``decode_chunked(mode="window")``; with ``grid="latent"``
    the pixel frames of one latent frame share one weight.  ``overlap`` counts latent frames of
    context in front of each window; ``overlap - 1`` latent frames of output are shared.
    """
    family = validate_latent(vae, z)
    chunk = family.default_chunk if chunk is None else chunk
    _check(blend, grid)
    if not isinstance(overlap, int) or overlap < 1:
        raise ValueError(f"overlap={overlap!r} must be an integer >= 1 latent frame")
    check_windows(family, z.shape[2], chunk, overlap)
    return collect("chunked-window", _iter_window(vae, z, chunk, overlap, blend, grid), exact=False,
                   params={"chunk": chunk, "mode": "window", "overlap": overlap, "blend": blend, "grid": grid},
                   vae=vae)
