"""Temporal chunking: decode a few latent frames at a time and hand frames out as they are final.

Three modes, one call shape:

* ``cache``  – carry the decoder's causal cache between chunks (the registry's ``cache``: one stream class per
  kind in :data:`~vaestudy.decode.streams.STREAMS`). Exact where no norm pools a chunk's frames and the class's
  cache protocol allows it (``VAEFamily.streams_exactly``); with GroupNorm the statistics span a chunk.
* ``naive``  – decode every chunk as an independent clip. Each chunk gets one latent frame of
  context in front (a causal decoder turns a clip's first latent frame into a single pixel
  frame, which is dropped) so the frame count matches, but no cached features are carried.
* ``window`` – like naive with ``overlap`` latent frames of context, the overlapping pixel
  frames blended (the only option for families without a cache; inexact).
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
    plain_decode,
    validate_latent,
)
from vaestudy.decode.streams import chunk_plan, open_stream
from vaestudy.decode.tiled import BLENDS, blend_ramp
from vaestudy.registry.families import family_of

MODES = ("cache", "naive", "window")


def iter_chunked(vae, z: torch.Tensor, chunk: int | None = None, *, mode: str = "cache", overlap: int | None = None,
                 blend: str = "linear") -> Iterator[Chunk]:
    """Yield :class:`Chunk` objects, in order, as each group of pixel frames becomes final.

    ``chunk`` latent frames per step (default: the family's smallest valid chunk); ``overlap`` latent frames of
    context per window for ``mode='window'`` (default: the family's ``window_overlap``)."""
    family = validate_latent(vae, z)
    chunk = family.default_chunk if chunk is None else chunk
    overlap = family.window_overlap if overlap is None else overlap
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is unknown; valid: {', '.join(MODES)}")
    plan = chunk_plan(family, z.shape[2], chunk)  # validates chunk
    if mode == "cache":
        open_stream(vae)  # raises for families without a cache, before any work
        return _iter_cache(vae, z, plan)
    if mode == "naive":
        overlap = 1
    if not isinstance(overlap, int) or overlap < 1:
        raise ValueError(f"overlap={overlap!r} must be an integer >= 1 latent frame for mode='window'")
    if blend not in BLENDS:
        raise ValueError(f"blend={blend!r} is unknown; valid: {', '.join(BLENDS)}")
    for a, b in plan[1:]:
        family.check_latent_frames(b - max(a - overlap, 0), name=f"window length (chunk={chunk} + overlap={overlap})")
    return _iter_window(vae, z, plan, overlap, blend)


def _iter_cache(vae, z, plan) -> Iterator[Chunk]:
    device, _ = model_device_dtype(vae)
    family = family_of(vae)
    stream = open_stream(vae)
    sw = Clock(device)
    with torch.no_grad():
        for a, b in plan:
            # the next latent frame, for a stream whose decoder reads ahead (the others ignore it)
            ahead = z[:, :, b:b + 1] if b < z.shape[2] else None
            out = stream.step(z[:, :, a:b], ahead=ahead)
            dt, el = sw.lap()
            yield Chunk(out, family.latent_to_pixel_frames(0, a)[1], dt, el)


def _iter_window(vae, z, plan, overlap, blend) -> Iterator[Chunk]:
    """Overlapping independent windows; pixel frames shared by two windows are blended."""
    family = family_of(vae)
    device, _ = model_device_dtype(vae)
    px = family.latent_to_pixel_frames
    sw = Clock(device)
    pending = None  # frames decoded but possibly still to be blended with the next window
    pending_start = 0
    with torch.no_grad():
        for j, (a, b) in enumerate(plan):
            s = max(a - overlap, 0)
            out = plain_decode(vae, z[:, :, s:b])
            cover_start = 0 if s == 0 else px(0, s + 1)[1]  # first pixel frame this window covers
            if s > 0:
                out = out[:, :, 1:]  # the window's own first frame stands for a video start: drop it
            if pending is not None and cover_start < pending_start:
                out = out[:, :, pending_start - cover_start:]  # already handed out
                cover_start = pending_start
            if pending is not None:
                shared = pending_start + pending.shape[2] - cover_start
                if shared > 0:
                    w = blend_ramp(shared, blend).to(out).view(1, 1, -1, 1, 1)
                    out = out.clone()
                    out[:, :, :shared] = w * out[:, :, :shared] + (1 - w) * pending[:, :, -shared:]
                    pending = pending[:, :, :-shared]
                if pending.shape[2]:
                    dt, el = sw.lap()
                    yield Chunk(pending, pending_start, dt, el)
            pending, pending_start = out, cover_start
            if j + 1 < len(plan):
                # frames before the next window's coverage are final now
                nxt = plan[j + 1][0]
                keep_from = px(0, max(nxt - overlap, 0) + 1)[1]
                final = keep_from - pending_start
                if final > 0:
                    dt, el = sw.lap()
                    yield Chunk(pending[:, :, :final], pending_start, dt, el)
                    pending, pending_start = pending[:, :, final:], keep_from
        dt, el = sw.lap()
        yield Chunk(pending, pending_start, dt, el)


def decode_chunked(vae, z: torch.Tensor, chunk: int | None = None, *, mode: str = "cache",
                   overlap: int | None = None, blend: str = "linear") -> DecodeResult:
    """Collect :func:`iter_chunked` into a :class:`DecodeResult` (strategy ``chunked``, ``chunked-naive``
    or ``chunked-window``)."""
    family = family_of(vae)
    chunk = family.default_chunk if chunk is None else chunk
    overlap = family.window_overlap if overlap is None else overlap
    chunks = iter_chunked(vae, z, chunk, mode=mode, overlap=overlap, blend=blend)
    name = {"cache": "chunked", "naive": "chunked-naive", "window": "chunked-window"}[mode]
    exact = mode == "cache" and family.streams_exactly
    params = {"chunk": chunk, "mode": mode}
    if mode == "window":
        params.update(overlap=overlap, blend=blend)
    return collect(name, chunks, exact=exact, params=params, vae=vae)
