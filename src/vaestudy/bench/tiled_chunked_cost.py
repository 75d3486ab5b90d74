"""What tiled+chunked costs beside the full decode and plain tiling, measured side by side in one run.

Four decodes of one latent, repeats interleaved (repeat r of every decode runs in turn, so load drifts hit all
alike): the family's ``decode()`` (``full``), plain ``tiled``, the previous tiled+chunked loop (one decoder call per
tile per chunk, :func:`~vaestudy.decode.tiled_chunked.iter_tiled_chunked_per_tile`) and today's (the tiles of a
chunk as one batch). Frames are counted and dropped as they arrive (a streaming consumer), for all four alike. Peak
memory comes from one extra run of each (:class:`~vaestudy.bench.memory.PeakMemory`, exact resident set on CPU).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator

import torch

from vaestudy.bench.memory import PeakMemory, exact_rss
from vaestudy.clock import Clock
from vaestudy.decode.common import Chunk, clear_vae_cache, random_latent
from vaestudy.decode.strategies import iter_strategy, resolve
from vaestudy.decode.streams import chunk_plan
from vaestudy.decode.tiled import TilePlan
from vaestudy.decode.tiled_chunked import iter_tiled_chunked, iter_tiled_chunked_per_tile, overlap_work
from vaestudy.registry.families import family_of
from vaestudy.tables import Col, format_table

TIME_TARGET = 1.10  # tiled+chunked at most this many times the full decode's time (issue 21)
DECODES = ("full", "tiled", "tiled+chunked (per tile, before)", "tiled+chunked (batched)")


def _drain(chunks: Iterator[Chunk]) -> int:
    n = 0
    for ch in chunks:
        n += ch.frames.shape[2]
        del ch
    return n


def _decoders(vae, z, params: dict, tile_batches=()) -> dict[str, Callable[[], int]]:
    tp = {k: params[k] for k in ("tile", "overlap")}
    extra = {f"tiled+chunked (tile_batch={k})": (lambda k=k: _drain(iter_tiled_chunked(vae, z, params["chunk"],
                                                                                        tile_batch=k, **tp)))
             for k in tile_batches}
    return {
        "full": lambda: _drain(iter_strategy("full", vae, z)),
        "tiled": lambda: _drain(iter_strategy("tiled", vae, z, **tp)),
        "tiled+chunked (per tile, before)": lambda: _drain(iter_tiled_chunked_per_tile(vae, z, params["chunk"], **tp)),
        "tiled+chunked (batched)": lambda: _drain(iter_tiled_chunked(vae, z, params["chunk"], **tp)),
        **extra,
    }


def _timed(fn, device) -> float:
    clock = Clock(device)
    fn()
    return clock.lap()[0]


def _peak(fn, device) -> int:
    ctx = exact_rss() if torch.device(device).type == "cpu" else torch.no_grad()
    with ctx:
        probe = PeakMemory(device)
        probe.start()
        fn()
        return probe.stop()["peak_bytes"]


def tiled_chunked_cost(vae, *, frames: int, size: tuple[int, int], chunk: int | None = None, tile=None,
                       overlap=None, repeats: int = 3, warmup: int = 1, seed: int = 0, tile_batches=()) -> dict:
    """Time (median, min, max in s) and peak memory (bytes) of the four :data:`DECODES` of one seeded latent of
    ``frames`` x ``size`` pixels, with the ratios the issue asks for: time over the full decode's, peak over plain
    tiled's. ``tile``/``overlap``/``chunk`` as in :func:`vaestudy.decode.strategies.resolve` (default 2x2 tiles);
    ``tile_batches``: extra rows of the batched loop with at most that many tiles per decoder call."""
    for k in tile_batches:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"tile_batches={tuple(tile_batches)!r} must hold integers >= 1")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats={repeats!r} must be an integer >= 1")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup={warmup!r} must be an integer >= 0")
    family = family_of(vae)
    z = random_latent(vae, frames, size, seed)
    params = resolve("tiled+chunked", family, tuple(z.shape[2:]), chunk=chunk, tile=tile, overlap=overlap)
    device = z.device
    decoders = _decoders(vae, z, params, tile_batches)
    with torch.no_grad():
        for _ in range(warmup):
            for fn in decoders.values():
                fn()
        times = {k: [] for k in decoders}
        for _ in range(repeats):
            for k, fn in decoders.items():
                clear_vae_cache(vae)
                times[k].append(_timed(fn, device))
        peaks = {}
        for k, fn in decoders.items():
            clear_vae_cache(vae)
            peaks[k] = _peak(fn, device)
    clear_vae_cache(vae)
    plan = TilePlan.build(tuple(z.shape[-2:]), params["tile"], params["overlap"])
    full, tiled = statistics.median(times["full"]), peaks["tiled"]
    rows = []
    for k in decoders:
        med = statistics.median(times[k])
        rows.append({"decode": k, "median_s": med, "min_s": min(times[k]), "max_s": max(times[k]),
                     "time_vs_full": med / full, "peak_bytes": peaks[k],
                     "peak_vs_tiled": peaks[k] / tiled if tiled else None})
    new = rows[3]
    return {"model": family.name, "frames": frames, "size": tuple(size), "params": params, "tiles": len(plan.tiles),
            "chunks": len(chunk_plan(family, z.shape[2], params["chunk"])),
            "overlap_work": overlap_work(plan), "repeats": repeats, "device": str(device),
            "dtype": str(next(vae.parameters()).dtype).removeprefix("torch."), "rows": rows,
            "meets_time": new["time_vs_full"] <= TIME_TARGET,
            "meets_memory": new["peak_vs_tiled"] is not None and new["peak_vs_tiled"] <= 1.0}


def cost_table(result: dict) -> str:
    """The rows of :func:`tiled_chunked_cost` as a text table."""
    cols = [Col("decode"), Col("median s", "median_s", ".3f"),
            Col("min-max s", lambda r: f"{r['min_s']:.3f}-{r['max_s']:.3f}"),
            Col("time / full", "time_vs_full", ".2f"), Col("peak MB", lambda r: r["peak_bytes"] / 1e6, ".1f"),
            Col("peak / tiled", "peak_vs_tiled", ".2f")]
    return format_table(result["rows"], cols)


def cost_verdict(result: dict) -> str:
    """One sentence per target, chosen by the measured numbers."""
    new = next(r for r in result["rows"] if r["decode"] == DECODES[3])
    t = "meets" if result["meets_time"] else "misses"
    m = "meets" if result["meets_memory"] else "misses"
    return (f"batched tiled+chunked: {new['time_vs_full']:.2f}x the full decode's time ({t} the {TIME_TARGET:.2f}x "
            f"target; the tiles alone cover {result['overlap_work']:.2f}x the frame's pixels) and "
            f"{new['peak_vs_tiled']:.2f}x plain tiled's peak memory ({m} the 1.00x bound)")
