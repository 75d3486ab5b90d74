"""The chunk-size trade-off: for k = 1 ... T latent frames per chunk, time to first frame, throughput and peak memory
of the cached stream, for every cached family; the knee marked and the seed's chunk placed on the curve.

Each point is one ``vaestudy bench`` configuration (strategy ``chunked``, consumer ``discard``: frames are dropped
as they arrive, as a streaming consumer does), measured by :func:`vaestudy.bench.runner.sweep`, so every record is
appended to the results store as soon as it exists and a sweep that was stopped resumes where it stopped.

The knee (:func:`knee`): the smallest chunk whose throughput reaches :data:`KNEE_FRACTION` of the best throughput
on the curve — beyond it, larger chunks buy little throughput and cost first-frame latency and memory.

The seed's point (:func:`seed_point`): the source note's pipeline streams chunks of
``seed["latent_frames_per_chunk"]`` latent frames and states ``seed["decode_ms_per_chunk"]`` per chunk at
``seed["size"]`` (the figures come in as an argument, read from the claims table by the caller); the GPU reference
re-measured that chunk (``anchors.jsonl``, the record with a steady chunk time). Both are GPU figures at another
size: they are shown beside our point at the same k, never on our time axis.
"""

from __future__ import annotations

from collections.abc import Iterable

from vaestudy.bench.config import BenchConfig
from vaestudy.bench.reference import load_reference
from vaestudy.bench.runner import sweep
from vaestudy.bench.store import ResultStore
from vaestudy.registry.families import FAMILIES, get_family
from vaestudy.registry.family import VAEFamily
from vaestudy.tables import Col, format_table

KNEE_FRACTION = 0.9  # the knee: smallest chunk reaching this share of the curve's best throughput


def cached_families() -> list[str]:
    """Every registry family that streams with a carried cache (``streamable``), in registry order."""
    return [f.name for f in FAMILIES.values() if f.streamable]


def chunk_sizes(family: VAEFamily, latent_frames: int, up_to: int | None = None) -> list[int]:
    """The chunks 1 ... ``latent_frames`` (at most ``up_to``) that ``family``'s chunk rule accepts."""
    top = latent_frames if up_to is None else min(up_to, latent_frames)
    out = []
    for k in range(1, top + 1):
        try:
            family.check_chunk(k)
        except ValueError:
            continue
        out.append(k)
    return out


def curve_configs(models: Iterable[str] | None = None, *, frames: int, size: tuple[int, int], weights: str = "random",
                  device: str = "cpu", dtype: str = "float32", repeats: int = 3, warmup: int = 1, seed: int = 0,
                  max_chunk: int | None = None) -> list[BenchConfig]:
    """One ``chunked`` configuration per family and chunk size; ValueError naming a model that cannot stream."""
    models = cached_families() if models is None else list(models)
    out = []
    for name in models:
        family = get_family(name)
        if not family.streamable:
            raise ValueError(f"model={name!r} has no temporal cache, so it has no chunk-size curve; cached families: "
                             f"{', '.join(cached_families())}")
        family.check_frames(frames)
        lt = family.latent_shape(frames, *size)[1]
        for k in chunk_sizes(family, lt, max_chunk):
            out.append(BenchConfig(model=name, weights=weights, frames=frames, size=tuple(size), strategy="chunked",
                                   chunk=k, consumer="discard", repeats=repeats, warmup=warmup, device=device,
                                   dtype=dtype, seed=seed))
    if not out:
        raise ValueError(f"no chunk size to measure for models={models} at frames={frames}")
    return out


def points(records: list[dict]) -> dict[str, list[dict]]:
    """Records as curve points per model, by chunk: ``chunk``, ``first_frame_s``, ``fps`` (pixel frames per s),
    ``peak_bytes``, ``chunk_s`` (the steady chunk's median seconds; None with one chunk), ``wall_s`` with min/max."""
    out: dict[str, list[dict]] = {}
    for r in records:
        first = r["first_frame_s"]
        out.setdefault(r["model"], []).append({
            "model": r["model"], "chunk": r["chunk"], "first_frame_s": first["median"] if isinstance(first, dict)
            else first, "wall_s": r["wall_s"]["median"], "wall_min_s": r["wall_s"]["min"],
            "wall_max_s": r["wall_s"]["max"], "fps": r["fps"], "peak_bytes": r["peak_bytes"],
            "chunk_s": r.get("chunk_s_steady_median"), "chunks": r["chunks"], "frames": r["frames"],
            "size": tuple(r["size"]), "device": r["device"], "resumed": r.get("resumed", False)})
    for pts in out.values():
        pts.sort(key=lambda p: p["chunk"])
        k = knee(pts)
        for p in pts:
            p["knee"] = p["chunk"] == k
    return out


def knee(pts: list[dict], fraction: float = KNEE_FRACTION) -> int | None:
    """The smallest ``chunk`` whose ``fps`` is at least ``fraction`` of the best ``fps`` among ``pts`` (None if
    empty); ValueError for a fraction outside (0, 1]."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction!r} must be in (0, 1]")
    if not pts:
        return None
    best = max(p["fps"] for p in pts)
    return min(p["chunk"] for p in pts if p["fps"] >= fraction * best)


def seed_reference(reference: str = "h200-2026-11-29") -> dict | None:
    """The GPU reference's re-measurement of the seed's chunk: the anchors record holding a steady chunk time."""
    rec = next((a for a in load_reference(reference)["anchors"] if "steady_median_s" in a), None)
    if rec is None:
        return None
    return {"reference": reference, "shape": rec["shape"], "first_chunk_s": rec["first_chunk_s"],
            "steady_s": rec["steady_median_s"], "steady_min_s": rec["steady_min_s"],
            "steady_max_s": rec["steady_max_s"], "device": rec["device"], "dtype": rec["dtype"], "what": rec["what"]}


def seed_point(curve: dict[str, list[dict]], seed: dict, reference: dict | None = None) -> list[dict]:
    """The seed's chunk on each family's curve: our point at k = ``seed["latent_frames_per_chunk"]`` (None where the
    family cannot take that chunk or the sweep stopped below it), beside the seed's stated seconds per chunk and the
    reference's measured steady seconds (GPU figures, another size)."""
    k = seed["latent_frames_per_chunk"]
    out = []
    for model, pts in curve.items():
        ours = next((p for p in pts if p["chunk"] == k), None)
        best = max(p["fps"] for p in pts)
        out.append({"model": model, "chunk": k, "ours": ours,
                    "fps_share_of_best": ours["fps"] / best if ours else None,
                    "at_or_past_knee": (ours is not None and k >= knee(pts)),
                    "seed_chunk_s": seed["decode_ms_per_chunk"] / 1000, "seed_size": tuple(seed["size"]),
                    "reference_chunk_s": reference["steady_s"] if reference else None,
                    "reference_device": reference["device"] if reference else None})
    return out


def chunk_curve(models: Iterable[str] | None = None, *, frames: int, size: tuple[int, int],
                store: ResultStore | str | None = None, weights: str = "random", device: str = "cpu",
                dtype: str = "float32", repeats: int = 3, warmup: int = 1, seed: int = 0, max_chunk: int | None = None,
                progress: bool = False, run_id: str | None = None, resume: bool = True) -> dict[str, list[dict]]:
    """Measure (or resume from ``store``) the curve of every family of ``models`` (default: every cached family)."""
    cfgs = curve_configs(models, frames=frames, size=size, weights=weights, device=device, dtype=dtype,
                         repeats=repeats, warmup=warmup, seed=seed, max_chunk=max_chunk)
    records = sweep(cfgs, store, flops=False, progress=progress, run_id=run_id, resume=resume)
    return points(records)


def curve_table(curve: dict[str, list[dict]]) -> str:
    """Every point as a text table, the knee marked."""
    rows = [p for pts in curve.values() for p in pts]
    cols = [Col("model"), Col("chunk"), Col("first frame s", "first_frame_s", ".3f"), Col("fps", "fps", ".2f"),
            Col("steady chunk s", lambda p: f"{p['chunk_s']:.3f}" if p["chunk_s"] is not None else "-"),
            Col("peak MB", lambda p: p["peak_bytes"] / 1e6 if p["peak_bytes"] is not None else None, ".1f"),
            Col("knee", lambda p: "<- knee" if p["knee"] else "")]
    return format_table(rows, cols)
