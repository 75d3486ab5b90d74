"""Temporal chunking: decode a few latent frames at a time and hand frames out as they are final.

Three modes, one call shape:

* ``cache``  – carry the decoder's causal cache between chunks (the registry's ``cache``: one stream class per
  kind in :data:`~vaestudy.decode.streams.STREAMS`). Exact where no norm pools a chunk's frames and the class's
  cache protocol allows it (``VAEFamily.streams_exactly``); with GroupNorm the statistics span a chunk.
* ``naive``  – decode every chunk as an independent clip. Each chunk gets one latent frame of
  context in front (a causal decoder turns a clip's first latent frame into a single pixel
  frame, which is dropped) so the frame count matches, but no cached features are carried.
* ``window`` – like naive with ``overlap`` latent frames of context, the overlapping pixel
  frames blended (the only option for families without a cache; inexact). On a fixed frame grid (a latent prefix
  is not a video prefix) every window is a whole clip on the grid, and the frames its context decodes again are
  the ones blended.
"""

from __future__ import annotations

from collections.abc import Iterator

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
from vaestudy.decode.streams import check_windows, open_stream, stream_chunk, stream_plan, window_context
from vaestudy.decode.tiled import BLENDS, blend_ramp
from vaestudy.registry.families import family_of

MODES = ("cache", "naive", "window")


def iter_chunked(vae, z: torch.Tensor, chunk: int | None = None, *, mode: str = "cache", overlap: int | None = None,
                 blend: str = "linear") -> Iterator[Chunk]:
    """Yield :class:`Chunk` objects, in order, as each group of pixel frames becomes final.

    ``chunk`` latent frames per step (default: the family's smallest valid chunk); ``overlap`` latent frames of
    context per window for ``mode='window'`` (default: :func:`~vaestudy.decode.streams.window_context`)."""
    family = validate_latent(vae, z)
    chunk = stream_chunk(family) if chunk is None else chunk
    overlap = window_context(family) if overlap is None else overlap
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is unknown; valid: {', '.join(MODES)}")
    plan = stream_plan(family, z.shape[2], chunk)  # validates chunk (on a frame grid: a multiple of its step)
    if mode == "cache":
        open_stream(vae)  # raises for families without a cache, before any work
        return _iter_cache(vae, z, plan)
    if mode == "naive":
        overlap = 1
    if not isinstance(overlap, int) or overlap < 1:
        raise ValueError(f"overlap={overlap!r} must be an integer >= 1 latent frame for mode='window'")
    if blend not in BLENDS:
        raise ValueError(f"blend={blend!r} is unknown; valid: {', '.join(BLENDS)}")
    check_windows(family, z.shape[2], chunk, overlap)
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


def _cover_start(family, step: tuple[int, int], overlap: int) -> int:
    """First pixel frame of the video that the window of latent ``step`` = [a, b) covers (``overlap`` latent frames
    of context in front): after the dropped first frame of a causal window, or on a frame grid where the clip of its
    last latent frame ends minus the window's own length."""
    a, b = step
    s = max(a - overlap, 0)
    if family.causal_frames:
        return 0 if s == 0 else family.latent_to_pixel_frames(0, s + 1)[1]
    return family.pixel_frames(b) - family.pixel_frames(b - s)


def _iter_window(vae, z, plan, overlap, blend) -> Iterator[Chunk]:
    """Overlapping independent windows; pixel frames shared by two windows are blended."""
    family = family_of(vae)
    device, _ = model_device_dtype(vae)
    sw = Clock(device)
    pending = None  # frames decoded but possibly still to be blended with the next window
    pending_start = 0
    with torch.no_grad():
        for j, (a, b) in enumerate(plan):
            s = max(a - overlap, 0)
            out = plain_decode(vae, z[:, :, s:b])
            if s > 0 and family.causal_frames:
                out = out[:, :, 1:]  # the window's own first frame stands for a video start: drop it
            # on a frame grid a window's first frames decode its context again: frames the previous window covered,
            # blended below like a causal window's
            cover_start = _cover_start(family, (a, b), overlap)
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
                keep_from = _cover_start(family, plan[j + 1], overlap)
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
    chunk = stream_chunk(family) if chunk is None else chunk
    overlap = window_context(family) if overlap is None else overlap
    chunks = iter_chunked(vae, z, chunk, mode=mode, overlap=overlap, blend=blend)
    name = {"cache": "chunked", "naive": "chunked-naive", "window": "chunked-window"}[mode]
    exact = mode == "cache" and family.streams_exactly
    params = {"chunk": chunk, "mode": mode}
    if mode == "window":
        params.update(overlap=overlap, blend=blend)
    return collect(name, chunks, exact=exact, params=params, vae=vae)
