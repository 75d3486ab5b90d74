"""Tiles streamed through time: every spatial tile keeps its own causal cache, the tiles of a chunk go through the
decoder together as one batch.

The strategy is unchanged: each tile of the plan is streamed chunk by chunk with its own cache (exactly what
:mod:`~vaestudy.decode.tiled` decodes per tile, in time order), and the tiles are blended in pixel space with the
plan's weights. What changed is how a chunk is run:

* **one decoder call per chunk, not one per tile.** All tiles have the same size (the plan moves the last tile back
  instead of shrinking it), so the latent crops of one chunk stack along the batch axis and one stream carries one
  batched cache. Every operation of these decoders acts per sample (convolutions, per-sample RMS or GroupNorm,
  attention within a frame), so tile ``i`` of the batch sees exactly the arithmetic it saw alone; only the kernels'
  summation order may change with the batch (fp32 rounding, ``~1e-6``). ``tile_batch`` caps how many tiles share a
  call (memory of one step grows with it).
* **weights prepared once.** The previous loop rebuilt every tile's float64 weight map (and copied it to the device)
  on every chunk, accumulated an unnormalised sum plus a weight sum and divided at the end: three full-chunk
  buffers. Now each tile's weight is divided by the weight sum once, before the first chunk, and each chunk is a
  single buffer filled by ``addcmul_`` (``a * (w / s)`` instead of ``(a * w) / s``: rounding-level differences).

Where the old time and memory went (measured by :func:`vaestudy.bench.tiled_chunked_cost.tiled_chunked_cost`, which
times the old loop, kept here as :func:`iter_tiled_chunked_per_tile`, beside the new one): the old loop issued
``tiles x chunks`` decoder calls, each a small tile through a decoder whose cost per call is mostly fixed work
(kernel launches on a GPU, Python and oneDNN dispatch on a CPU) — per pixel it paid that fixed work ``tiles`` times
more often than the full decode; and it held, besides every tile's cache (which any tiled stream must hold), the
rebuilt weight maps and the three chunk buffers. The tile overlap itself is real extra work that no reordering
removes: ``plan.tile`` area times tile count over the frame area (see :func:`overlap_work`).

Memory, honestly: a tiled stream must hold every tile's cache at once, where plain tiling holds one tile's cache
(and the whole output video). So tiled+chunked peaks at or below plain tiling only where the kept output outweighs the
other tiles' caches (long videos, small caches); batching adds a step's activations for ``tile_batch`` tiles at once
instead of one, which at full frame sizes approaches what one frame of the full decode needs. ``tile_batch`` (e.g. 1
or 2) trades the speed back for memory; ``vaestudy levers --levers none`` measures both sides.
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
    validate_latent,
)
from vaestudy.decode.streams import chunk_plan, open_stream
from vaestudy.decode.tiled import BLENDS, TileBlender, TilePlan
from vaestudy.registry.families import family_of

ORDERS = ("time", "tile")  # time-major: every tile advances chunk by chunk; tile-major: one group of tiles at a time


def _check(vae, z, chunk, tile, overlap, blend, tile_batch, order="time"):
    family = validate_latent(vae, z)
    if order not in ORDERS:
        raise ValueError(f"order={order!r} is unknown; valid: {', '.join(ORDERS)}")
    chunk = family.default_chunk if chunk is None else chunk
    if blend not in BLENDS:
        raise ValueError(f"blend={blend!r} is unknown; valid: {', '.join(BLENDS)}")
    if tile_batch is not None and (not isinstance(tile_batch, int) or isinstance(tile_batch, bool) or tile_batch < 1):
        raise ValueError(f"tile_batch={tile_batch!r} must be None (every tile of a chunk in one call) or an integer >= 1")
    plan = TilePlan.build(tuple(z.shape[-2:]), tile, overlap)
    tplan = chunk_plan(family, z.shape[2], chunk)
    open_stream(vae)  # raises early for families without a cache
    return plan, tplan


def overlap_work(plan: TilePlan) -> float:
    """Latent pixels the tiles decode over the latent's own pixels (1.0 = no overlap): the floor of the time
    ratio of any tiled decode to the full decode when both run at the same efficiency."""
    return len(plan.tiles) * plan.tile[0] * plan.tile[1] / (plan.height * plan.width)


def normalised_weights(plan: TilePlan, scale: int, blend: str) -> list[torch.Tensor]:
    """Per-tile (H, W) float64 weight maps in output pixels, divided by the plan's weight sum (so they sum to one
    at every output pixel), row-major like :attr:`TilePlan.tiles`."""
    maps = plan.weights(scale, blend)
    total = torch.zeros(plan.height * scale, plan.width * scale, dtype=torch.float64)
    for (y, x, h, w), m in zip(plan.tiles, maps):
        total[y * scale:(y + h) * scale, x * scale:(x + w) * scale] += m
    return [m / total[y * scale:(y + h) * scale, x * scale:(x + w) * scale]
            for (y, x, h, w), m in zip(plan.tiles, maps)]


def iter_tiled_chunked(vae, z: torch.Tensor, chunk: int | None = None, tile=8, overlap=2, blend: str = "linear",
                       tile_batch: int | None = None, order: str = "time", offload: bool = False) -> Iterator[Chunk]:
    """Yield blended full frames chunk by chunk; each tile streams with its own cache, ``tile_batch`` tiles (default
    all) per decoder call. ``order="time"`` advances every tile chunk by chunk (a stream: the first frames arrive
    after one chunk, every tile's cache held at once); ``order="tile"`` streams one group of ``tile_batch`` tiles
    through the whole video before the next (one group's cache at a time, the whole output held, and the first frame
    only once the last group has started: plain tiling's memory shape with a chunk's activations).
    ``offload=True`` (time order, a CUDA model only) parks every idle group's cache in host memory between its steps:
    the device holds one group's cache, at ``2 x`` the other groups' cache bytes over the bus per chunk. On a CPU the
    host is the same memory, so it is refused there."""
    plan, tplan = _check(vae, z, chunk, tile, overlap, blend, tile_batch, order)
    batch = tile_batch or len(plan.tiles)
    if offload:
        device = model_device_dtype(vae)[0]
        if order != "time" or not offload_applies(device):
            raise ValueError(f"offload=True parks idle tiles' caches in host memory: it needs order='time' (got "
                             f"{order!r}) and a CUDA model (got {device}), where the host is another memory")
    if order == "tile":
        return _iter_tile_major(vae, z, plan, tplan, blend, batch)
    return _iter(vae, z, plan, tplan, blend, batch, offload)


def offload_applies(device: torch.device) -> bool:
    """Whether parking caches in host memory frees anything: only where the model lives on a CUDA device."""
    return torch.device(device).type == "cuda" and torch.cuda.is_available()


def _moved(v, device, pin: bool):
    if isinstance(v, torch.Tensor):
        if pin and v.device.type != "cpu":  # device -> pinned host buffer, so the copy back can overlap compute
            host = torch.empty(v.shape, dtype=v.dtype, pin_memory=True)
            return host.copy_(v, non_blocking=True)
        return v.to(device, non_blocking=True)
    if isinstance(v, dict):
        return {k: _moved(x, device, pin) for k, x in v.items()}
    if isinstance(v, list):
        return [_moved(x, device, pin) for x in v]
    if isinstance(v, tuple):
        return tuple(_moved(x, device, pin) for x in v)
    return v


def move_stream_state(stream, device, *, pin: bool = False) -> None:
    """Move the tensors a stream carries between steps (``cache`` or the modules' ``saved`` state) to ``device``,
    in place of the old ones; ``pin``: to page-locked host memory."""
    for attr in ("cache", "saved"):
        if getattr(stream, attr, None) is not None:
            setattr(stream, attr, _moved(getattr(stream, attr), device, pin))


def stream_state_bytes(stream) -> int:
    """Bytes of the tensors a stream carries between steps (its cache: ``cache`` or the modules' ``saved`` state),
    each storage counted once."""
    seen: dict[int, int] = {}

    def walk(v):
        if isinstance(v, torch.Tensor):
            seen.setdefault(v.untyped_storage().data_ptr(), v.untyped_storage().nbytes())
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    walk(getattr(stream, "cache", None))
    walk(getattr(stream, "saved", None))
    return sum(seen.values())


def tile_cache_bytes(vae, z: torch.Tensor, chunk: int | None = None, tile=8, overlap=2) -> dict:
    """The cache one tile's stream carries, measured after each step of one tile streamed through ``z`` (bytes):
    ``steady`` (the largest), ``per_step`` and the tile count, so ``tiles * steady`` is what a time-major tiled
    stream must hold beside one step's activations."""
    plan, tplan = _check(vae, z, chunk, tile, overlap, "linear", None)
    y, x, h, w = plan.tiles[0]
    stream = open_stream(vae)
    per_step = []
    with torch.no_grad():
        for a, e in tplan:
            ahead = z[:, :, e:e + 1, y:y + h, x:x + w] if e < z.shape[2] else None
            stream.step(z[:, :, a:e, y:y + h, x:x + w], ahead=ahead)
            per_step.append(stream_state_bytes(stream))
    return {"steady": max(per_step), "per_step": per_step, "tiles": len(plan.tiles), "tile": plan.tile}


def _iter(vae, z, plan: TilePlan, tplan, blend, tile_batch, offload=False):
    family = family_of(vae)
    device, dtype = model_device_dtype(vae)
    s = family.spatial_compression
    tiles = plan.tiles
    groups = [list(range(i, min(i + tile_batch, len(tiles)))) for i in range(0, len(tiles), tile_batch)]
    weights = [w.to(device=device, dtype=dtype) for w in normalised_weights(plan, s, blend)]
    streams = [open_stream(vae) for _ in groups]
    b = z.shape[0]
    sw = Clock(device)
    with torch.no_grad():
        for a, e in tplan:
            out = None
            for group, stream in zip(groups, streams):
                boxes = [tiles[i] for i in group]
                crops = torch.cat([z[:, :, a:e, y:y + h, x:x + w] for y, x, h, w in boxes])
                # the next latent frame, for a stream whose decoder reads ahead (the others ignore it)
                ahead = torch.cat([z[:, :, e:e + 1, y:y + h, x:x + w] for y, x, h, w in boxes]) \
                    if e < z.shape[2] else None
                if offload:
                    move_stream_state(stream, device)
                px = stream.step(crops, ahead=ahead)
                if offload and len(groups) > 1:  # idle until the next chunk: park it on the host
                    move_stream_state(stream, "cpu", pin=True)
                del crops, ahead
                if out is None:
                    out = torch.zeros(b, 3, px.shape[2], plan.height * s, plan.width * s, dtype=px.dtype,
                                      device=px.device)
                for j, i in enumerate(group):
                    y, x, h, w = (v * s for v in tiles[i])
                    out[..., y:y + h, x:x + w].addcmul_(px[j * b:(j + 1) * b], weights[i])
                del px
            dt, el = sw.lap()
            yield Chunk(out, family.latent_to_pixel_frames(0, a)[1], dt, el)


def _iter_tile_major(vae, z, plan: TilePlan, tplan, blend, tile_batch):
    family = family_of(vae)
    device, dtype = model_device_dtype(vae)
    s = family.spatial_compression
    tiles = plan.tiles
    weights = [w.to(device=device, dtype=dtype) for w in normalised_weights(plan, s, blend)]
    b = z.shape[0]
    out: list[torch.Tensor | None] = [None] * len(tplan)  # the whole video, per chunk, as plain tiling holds it
    sw = Clock(device)
    with torch.no_grad():
        for g in range(0, len(tiles), tile_batch):
            boxes = tiles[g:g + tile_batch]
            stream = open_stream(vae)  # one group's cache at a time, dropped before the next group opens its own
            for k, (a, e) in enumerate(tplan):
                crops = torch.cat([z[:, :, a:e, y:y + h, x:x + w] for y, x, h, w in boxes])
                ahead = torch.cat([z[:, :, e:e + 1, y:y + h, x:x + w] for y, x, h, w in boxes]) \
                    if e < z.shape[2] else None
                px = stream.step(crops, ahead=ahead)
                del crops, ahead
                if out[k] is None:
                    out[k] = torch.zeros(b, 3, px.shape[2], plan.height * s, plan.width * s, dtype=px.dtype,
                                         device=px.device)
                for j, (y, x, h, w) in enumerate(boxes):
                    out[k][..., y * s:(y + h) * s, x * s:(x + w) * s].addcmul_(px[j * b:(j + 1) * b], weights[g + j])
                del px
            del stream
    dt, el = sw.lap()
    for k, (a, _) in enumerate(tplan):  # nothing is final before the last group: every chunk is ready at the end
        frames, out[k] = out[k], None
        yield Chunk(frames, family.latent_to_pixel_frames(0, a)[1], dt if k == 0 else 0.0, el)


def iter_tiled_chunked_per_tile(vae, z: torch.Tensor, chunk: int | None = None, tile=8, overlap=2,
                                blend: str = "linear") -> Iterator[Chunk]:
    """The previous implementation, kept as the reference the batched one is checked and timed against: one decoder
    call per tile per chunk, weight maps rebuilt per chunk, blended as ``sum(w * tile) / sum(w)``."""
    plan, tplan = _check(vae, z, chunk, tile, overlap, blend, None)
    return _iter_per_tile(vae, z, plan, tplan, blend)


def _iter_per_tile(vae, z, plan, tplan, blend):
    family = family_of(vae)
    device, _ = model_device_dtype(vae)
    streams = [open_stream(vae) for _ in plan.tiles]
    sw = Clock(device)
    with torch.no_grad():
        for a, b in tplan:
            blender = None
            for i, (y, x, h, w) in enumerate(plan.tiles):
                ahead = z[:, :, b:b + 1, y:y + h, x:x + w] if b < z.shape[2] else None
                out = streams[i].step(z[:, :, a:b, y:y + h, x:x + w], ahead=ahead)
                if blender is None:
                    blender = TileBlender(plan, family.spatial_compression, blend, out, out.shape[2])
                blender.add(i, out)
            dt, el = sw.lap()
            yield Chunk(blender.result(), family.latent_to_pixel_frames(0, a)[1], dt, el)


def decode_tiled_chunked(vae, z: torch.Tensor, chunk: int | None = None, tile=8, overlap=2, blend: str = "linear",
                         tile_batch: int | None = None, order: str = "time") -> DecodeResult:
    """Collect :func:`iter_tiled_chunked` into a :class:`DecodeResult`."""
    family = family_of(vae)
    chunk = family.default_chunk if chunk is None else chunk
    chunks = iter_tiled_chunked(vae, z, chunk, tile, overlap, blend, tile_batch, order)
    plan = TilePlan.build(tuple(z.shape[-2:]), tile, overlap)
    s = family.spatial_compression
    return collect("tiled+chunked", chunks, exact=False,
                   params={"chunk": chunk, "tile": plan.tile, "overlap": plan.overlap, "blend": blend,
                           "tile_batch": tile_batch or len(plan.tiles), "order": order},
                   vae=vae, extra={"plan": plan, "seams_y": plan.seams(0, s), "seams_x": plan.seams(1, s)})
