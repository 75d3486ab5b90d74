"""Tiles streamed through time: every spatial tile keeps its own causal cache."""

from __future__ import annotations

from typing import Iterator

import torch

from vaestudy.clock import Clock
from vaestudy.decode.common import (
    Chunk,
    DecodeResult,
    collect,
    model_device_dtype,
    validate_latent,
)
from vaestudy.decode.streams import chunk_plan, open_stream
from vaestudy.decode.tiled import BLENDS, TileBlender, TilePlan
from vaestudy.registry.families import family_of


def iter_tiled_chunked(vae, z: torch.Tensor, chunk: int | None = None, tile=8, overlap=2, blend: str = "linear") -> Iterator[Chunk]:
    """Yield blended full frames chunk by chunk; each tile is streamed with its own cache."""
    family = validate_latent(vae, z)
    chunk = family.default_chunk if chunk is None else chunk
    if blend not in BLENDS:
        raise ValueError(f"blend={blend!r} is unknown; valid: {', '.join(BLENDS)}")
    plan = TilePlan.build(tuple(z.shape[-2:]), tile, overlap)
    tplan = chunk_plan(family, z.shape[2], chunk)
    open_stream(vae)  # raises early for families without a cache
    return _iter(vae, z, plan, tplan, blend)


def _iter(vae, z, plan, tplan, blend):
    family = family_of(vae)
    device, _ = model_device_dtype(vae)
    streams = [open_stream(vae) for _ in plan.tiles]
    sw = Clock(device)
    with torch.no_grad():
        for a, b in tplan:
            blender = None
            for i, (y, x, h, w) in enumerate(plan.tiles):
                out = streams[i].step(z[:, :, a:b, y:y + h, x:x + w])
                if blender is None:
                    blender = TileBlender(plan, family.spatial_compression, blend, out, out.shape[2])
                blender.add(i, out)
            dt, el = sw.lap()
            yield Chunk(blender.result(), family.latent_to_pixel_frames(0, a)[1], dt, el)


def decode_tiled_chunked(vae, z: torch.Tensor, chunk: int | None = None, tile=8, overlap=2, blend: str = "linear") -> DecodeResult:
    """Collect :func:`iter_tiled_chunked` into a :class:`DecodeResult`."""
    family = family_of(vae)
    chunk = family.default_chunk if chunk is None else chunk
    chunks = iter_tiled_chunked(vae, z, chunk, tile, overlap, blend)
    plan = TilePlan.build(tuple(z.shape[-2:]), tile, overlap)
    s = family.spatial_compression
    return collect("tiled+chunked", chunks, exact=False,
                   params={"chunk": chunk, "tile": plan.tile, "overlap": plan.overlap, "blend": blend},
                   vae=vae, extra={"plan": plan, "seams_y": plan.seams(0, s), "seams_x": plan.seams(1, s)})
