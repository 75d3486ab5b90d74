"""The planner: the fastest decode predicted to fit a memory budget, from a cost model (:mod:`vaestudy.bench.costmodel`).

The model it plans with:

Model (non-negative least squares, scipy's ``nnls``), one per family and strategy:

* seconds = a * computed pixel-frames + b * decoder calls + c
* bytes   = a * resident output pixel-frames + b * working pixel-frames per decoder call + c

"computed" counts the pixels every tile recomputes in its overlap; "decoder calls" is how often
the decoder runs (per-call overhead matters on CPU); "resident output" is what the consumer keeps
(the whole video for full/tiled or a ``keep`` consumer, one chunk when frames are streamed away);
"working" is the pixel-frames one decoder call produces (a family's own ``decode()`` may already run
a few latent frames per call: the registry's ``own_decode_calls``). A strategy with fewer than :data:`MIN_POINTS` records borrows the fit pooled
over all strategies of the family (``source='pooled'``), and so does one whose sweep never varied
some feature (a rank-deficient fit cannot extrapolate along it). Units: seconds, bytes, pixels.

The fit knows only the shapes and the network it was measured on: :func:`fit_range` records the frames, pixels per
frame and model size (weight source and weight bytes) of the records a fit used, and :func:`outside_range` names
every way a request leaves that range. :func:`plan` returns those warnings with its answer; nothing is extrapolated
silently. Records are chosen by :func:`select_records` (family, device, card, dtype, weight source), which counts
what it left out, so a plan can say which measurements it rests on.
"""

from __future__ import annotations

import numpy as np

# the cost model's API is the planner's too: callers plan and fit through one module
from vaestudy.bench.costmodel import (  # noqa: F401
    DTYPES,
    MEMORY_FEATURES,
    MIN_POINTS,
    TIME_FEATURES,
    WEIGHT_CONFIG,
    CostModel,
    LinearFit,
    Selection,
    error_summary,
    features,
    fit_cost_model,
    fit_linear,
    fit_range,
    hardware_of,
    holdout_errors,
    holdout_text,
    outside_range,
    range_text,
    record_features,
    record_params,
    select_records,
    setup,
    setup_text,
    unmeasured_setup,
    usable,
)
from vaestudy.bench.latency_plan import bench_stream, no_stream_reason
from vaestudy.decode.strategies import STREAMING, get_strategy
from vaestudy.decode.streams import chunk_plan
from vaestudy.decode.tiled import TilePlan
from vaestudy.registry.families import get_family
from vaestudy.registry.load import check_weight_source


# ---------------------------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------------------------
def candidates(model: str, frames: int, size: tuple[int, int], strategies, *, overlap: int = 2,
               keep_output: bool = False) -> list[dict]:
    """Strategy + parameter grid the planner searches: chunk 1, 2, 4, ... latent frames; 1-4 tiles per axis."""

    family = get_family(model)
    _, lt, lh, lw = family.latent_shape(frames, *size)
    chunks = sorted({c for c in (1, 2, 3, 4, 8, 16, 32) if c <= lt})
    tiles = []
    for k in (1, 2, 3, 4):
        try:
            o = overlap if k > 1 else 0
            p = TilePlan.for_count((lh, lw), (k, k), (o, o))
            if len(p.tiles) > 1:
                tiles.append((list(p.tile), list(p.overlap)))
        except ValueError:
            continue
    consumer = "keep" if keep_output else "discard"
    out = []
    for s in strategies:
        if not get_strategy(s).applies_to(family):
            continue
        chunk_opts = []
        for c in chunks if s in STREAMING else [None]:
            if c is not None:
                try:
                    chunk_plan(family, lt, c)
                except ValueError:
                    continue
            chunk_opts.append(c)
        for c in chunk_opts:
            for tl in (tiles if "tile" in get_strategy(s).params else [(None, None)]):
                out.append({"strategy": s, "chunk": c, "tile": tl[0], "overlap": tl[1],
                            "consumer": consumer if s in STREAMING else "keep"})
    return out


def plan(cm: CostModel, frames: int, size: tuple[int, int], budget_bytes: int, *, keep_output: bool = False,
         strategies=None, overlap: int = 2, weights: str | None = None) -> dict:
    """Fastest candidate predicted to fit ``budget_bytes`` (weights + decode peak).

    ``weights``: the weight source the planned decode uses (None: the records' own), checked against the size of
    the network measured. Returns {"best": row or None, "rows": every candidate sorted by predicted seconds (each
    with ``measured``: whether its setup was measured), "budget_bytes", "warnings": one sentence per way the request
    leaves the measured range (:func:`outside_range`), and one more when the recommended setup was never measured}.
    """
    if isinstance(budget_bytes, bool) or not isinstance(budget_bytes, (int, np.integer)) or budget_bytes <= 0:
        raise ValueError(f"budget_bytes={budget_bytes!r} must be a positive whole number of bytes "
                         f"(the CLI's --memory-budget 8GiB gives one)")
    get_family(cm.model).latent_shape(frames, *size)  # validates
    if weights is not None:
        check_weight_source(weights)
    warnings = outside_range({"frames": frames, "size": tuple(size), "weights": weights}, cm.measured) \
        if cm.measured else []
    strategies = strategies or sorted(set(cm.time) | {"full"})
    rows = []
    for c in candidates(cm.model, frames, size, strategies, overlap=overlap, keep_output=keep_output):
        params = {k: c[k] for k in ("chunk", "tile", "overlap", "consumer")}
        p = cm.predict(c["strategy"], frames, size, **params)
        key = setup(c["strategy"], features(cm.model, c["strategy"], frames, size, **params))
        rows.append({**c, **p, "tiles": key[2], "fits": p["total_bytes"] <= budget_bytes,
                     "measured": (key in cm.measured["setups"]) if cm.measured else None})
    rows.sort(key=lambda r: r["seconds"])
    best = next((r for r in rows if r["fits"]), None)
    if best is not None and cm.measured and not best["measured"]:
        warnings.append(unmeasured_setup(best, cm.measured))
    return {"best": best, "rows": rows, "budget_bytes": budget_bytes, "warnings": warnings}


def smallest(result: dict) -> dict:
    """The candidate of :func:`plan`'s result predicted to need the least memory (weights included)."""
    return min(result["rows"], key=lambda r: r["total_bytes"])


def describe(row: dict) -> str:
    """One-line description of a plan row: strategy and its parameters."""
    parts = [row["strategy"]]
    if row.get("chunk") is not None:
        parts.append(f"chunk={row['chunk']} latent frames")
    if row.get("tile") is not None:
        parts.append(f"tile={row['tile'][0]}x{row['tile'][1]} overlap={row['overlap'][0]} latent px")
    if row["strategy"] in STREAMING:
        parts.append(f"consumer={row['consumer']}")
    return ", ".join(parts)


def table_rows(result: dict, top: int) -> list[dict]:
    """The rows a plan table shows: the ``top`` fastest, plus the recommendation (or, when nothing fits, the
    smallest candidate) wherever it ranks, so the answer is always a row of the table; in order of predicted time."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top={top!r} must be a whole number of rows >= 1")
    rows = result["rows"]
    answer = result["best"] if result["best"] is not None else (smallest(result) if rows else None)
    shown = rows[:top]
    if answer is not None and not any(r is answer for r in shown):
        shown = shown + [answer]
    return shown


def format_table(result: dict, top: int) -> str:
    """The plan as a table: strategy, predicted seconds and MiB (weights included), whether it fits the budget and
    whether its setup was measured (? : unknown); ``*`` marks the recommendation; a line counts the rows skipped
    between the ``top`` fastest and it."""
    budget = result["budget_bytes"]
    shown = table_rows(result, top)
    width = max([len("strategy")] + [len(describe(r)) for r in shown])
    fits = f"fits {budget / 2**30:.2f} GiB"
    lines = [f"{'':2}{'strategy':<{width}} {'pred s':>8} {'pred MiB':>9}  {fits:>13}  setup measured"]
    rank = {id(r): i for i, r in enumerate(result["rows"])}
    prev = -1
    for r in shown:
        i = rank[id(r)]
        if i > prev + 1:
            lines.append(f"  ... {i - prev - 1} faster candidates, none of them fits")
        prev = i
        seen = {True: "yes", False: "no", None: "?"}[r.get("measured")]
        lines.append(f"{'*' if r is result['best'] else ' ':2}{describe(r):<{width}} {r['seconds']:>8.2f} "
                     f"{r['total_bytes'] / 2**20:>9.0f}  {'yes' if r['fits'] else 'no':>13}  {seen}")
    return "\n".join(lines)


def plan_text(cm: CostModel, frames: int, size: tuple[int, int], budget_bytes: int, *, keep_output: bool = False,
              weights: str | None = None) -> str:
    """The planner's answer in one sentence (what the widget shows and the tests check), then one warning line
    per way the request leaves the measured range (``weights``: as in :func:`plan`)."""
    res = plan(cm, frames, size, budget_bytes, keep_output=keep_output, weights=weights)
    b = res["best"]
    where = f"{frames} frames at {size[0]}x{size[1]} within {budget_bytes / 2**30:.2f} GiB"
    if b is None:
        low = smallest(res)
        text = f"{where}: nothing is predicted to fit (smallest: {describe(low)}, {low['total_bytes'] / 2**30:.2f} GiB)"
    else:
        text = (f"{where}: {describe(b)} — predicted {b['seconds']:.2f} s, "
                f"{b['total_bytes'] / 2**30:.2f} GiB with weights")
    return "\n".join([text] + [f"warning, extrapolated: {w}" for w in res["warnings"]])


def seed_comparison(cm: CostModel | None, flops_per_px: float | None, seed: dict, *,
                    our_peak_flops: float | None = None) -> dict:
    """Their per-chunk decode claim next to what our model and FLOP count say for the same shape.

    ``seed``: the source notes' pipeline figures (measured on their GPUs, not ours), as
    :func:`vaestudy.guide.sources.seed_pipeline` reads them from the claims table: ``decode_ms_per_chunk``,
    ``decode_share``, ``size`` (h, w), ``overlap_ceiling`` (low, high), ``latent_frames_per_chunk``.

    Comparable: the work (FLOPs) of one chunk, which does not depend on the device, and the
    arithmetic of shares. Not comparable: seconds (their GPU, our CPU), so our predicted seconds
    are for this CPU only, and are far outside the sizes we fitted.
    """
    c = seed
    h, w = c["size"]
    t = get_family(cm.model).temporal_compression if cm is not None else 4  # the seed's VAE compresses time 4x
    frames_per_chunk = c["latent_frames_per_chunk"] * t  # a steady chunk: t pixel frames per latent frame
    out = {"frames_per_chunk": frames_per_chunk, "size": (h, w),
           "claimed_chunk_s": c["decode_ms_per_chunk"] / 1000, "claimed_share": c["decode_share"],
           "implied_pipeline_chunk_s": c["decode_ms_per_chunk"] / 1000 / c["decode_share"],
           # if decode were hidden completely behind the rest, wall time falls by its share
           "full_overlap_saving": c["decode_share"],
           "full_overlap_speedup": 1 / (1 - c["decode_share"]) - 1,
           "claimed_overlap_ceiling": c["overlap_ceiling"]}
    px = frames_per_chunk * h * w
    if flops_per_px:
        out["chunk_flops"] = flops_per_px * px
        out["implied_gpu_flops_per_s"] = out["chunk_flops"] / out["claimed_chunk_s"]
        if our_peak_flops:
            out["our_peak_flops"] = our_peak_flops
            out["cpu_seconds_at_our_peak"] = out["chunk_flops"] / our_peak_flops
    family = get_family(cm.model) if cm is not None else None
    k = c["latent_frames_per_chunk"]
    stream = bench_stream(family) if family is not None else None  # chunked (cache), chunked-naive, or None
    fits = stream is not None and k >= family.chunk_min and k % family.chunk_multiple == 0 and \
        (t * k) % family.frame_step == 0
    if cm is not None and not fits:
        out["our_cpu_chunk_s"] = out["our_cpu_chunk_bytes"] = None
        out["not_comparable"] = (f"{family.name} cannot stream the seed's chunk of {k} latent frames"
                                 + (f": {no_stream_reason(family)}" if stream is None else
                                    f" (chunks of at least {family.chunk_min} and a multiple of "
                                    f"{family.chunk_multiple}, clips of {family.frame_rule_text} frames)"))
    elif cm is not None:
        # one steady chunk = the difference between decoding 1 + t*k and 1 latent frames, streamed
        t1 = cm.predict(stream, 1 + t * k, (h, w), chunk=k, consumer="discard")
        t0 = cm.predict(stream, 1, (h, w), chunk=family.default_chunk, consumer="discard")
        out["our_cpu_chunk_s"] = t1["seconds"] - t0["seconds"]
        out["our_cpu_chunk_bytes"] = t1["bytes"]
    return out
