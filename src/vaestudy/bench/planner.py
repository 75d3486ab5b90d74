"""Latency and memory model of a decode, fitted from benchmark records, and a planner on top.

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
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from vaestudy.bench.store import label
from vaestudy.decode.strategies import STREAMING, get_strategy
from vaestudy.decode.streams import chunk_plan
from vaestudy.decode.tiled import TilePlan, default_tile_plan
from vaestudy.devices import canonical_name, same_device
from vaestudy.registry.families import get_family

TIME_FEATURES = ("computed_pixel_frames", "decoder_calls", "const")
MEMORY_FEATURES = ("resident_pixel_frames", "working_pixel_frames", "const")
MIN_POINTS = 4


# ---------------------------------------------------------------------------------------------
# features of a decode (no model needed)
# ---------------------------------------------------------------------------------------------
def features(model: str, strategy: str, frames: int, size: tuple[int, int], *, chunk: int | None = None,
             tile=None, overlap=None, consumer: str = "keep") -> dict:
    """Model features of one decode configuration (see module docstring); tile/overlap in latent px."""

    family = get_family(model)
    h, w = size
    _, lt, lh, lw = family.latent_shape(frames, h, w)
    s, t = family.spatial_compression, family.temporal_compression
    pixels = h * w
    area, ntiles = pixels, 1
    if "tile" in get_strategy(strategy).params:
        if tile is None:

            plan = default_tile_plan((lh, lw), 2 if overlap is None else int(np.atleast_1d(overlap)[0]))
        else:
            plan = TilePlan.build((lh, lw), tuple(tile) if isinstance(tile, list) else tile,
                                  2 if overlap is None else (tuple(overlap) if isinstance(overlap, list) else overlap))
        tile_areas = [th * tw * s * s for (_, _, th, tw) in plan.tiles]
        ntiles, area = len(tile_areas), max(tile_areas)
        computed_per_frame = sum(tile_areas)
    else:
        computed_per_frame = pixels
    if strategy in STREAMING:
        chunk = chunk or family.default_chunk
        nchunks = len(chunk_plan(family, lt, chunk))
        calls = ntiles * (nchunks + (1 if chunk > 1 else 0))  # a first chunk of a per-frame cache: 1-frame call
        per_call_frames = chunk * t
        extra = (nchunks - 1) * pixels if strategy == "chunked-naive" else 0  # one context frame per chunk
        resident = frames * pixels if consumer == "keep" else per_call_frames * pixels
    else:
        calls_own, per_call_frames = family.own_decode_calls(lt)
        calls = ntiles * calls_own
        extra = 0
        resident = frames * pixels
    return {
        "computed_pixel_frames": frames * computed_per_frame + extra,
        "decoder_calls": calls,
        "resident_pixel_frames": resident,
        "working_pixel_frames": per_call_frames * area,
        "const": 1,
        "pixel_frames": frames * pixels,
    }


def record_features(r: dict) -> dict:
    return features(r["model"], r["strategy"], r["frames"], tuple(r["size"]), chunk=r.get("chunk"),
                    tile=r.get("tile"), overlap=r.get("overlap"), consumer=r.get("consumer", "keep"))


# ---------------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------------
@dataclass
class LinearFit:
    """y = X @ coef over named features; ``n`` points, ``source`` 'strategy' or 'pooled'."""

    features: tuple[str, ...]
    coef: np.ndarray
    n: int
    source: str = "strategy"
    rank: int = 0  # rank of the design matrix; below len(features) some coefficient is not identified

    @property
    def identified(self) -> bool:
        return self.rank == len(self.features)

    def predict(self, feats: dict) -> float:
        return float(np.dot(self.coef, [feats[f] for f in self.features]))

    def as_dict(self) -> dict:
        return {f: float(c) for f, c in zip(self.features, self.coef)}


def fit_linear(rows: list[dict], target: list[float], names: tuple[str, ...], source: str = "strategy") -> LinearFit:
    """Non-negative least squares of ``target`` on the named features of ``rows`` (columns scaled for conditioning)."""
    if not rows:
        raise ValueError("cannot fit a model to zero measurements")
    X = np.array([[r[f] for f in names] for r in rows], dtype=float)
    y = np.asarray(target, dtype=float)
    scale = np.abs(X).max(axis=0)
    scale[scale == 0] = 1.0
    # Non-negative least squares: seconds per pixel, per call and fixed (bytes likewise) cannot be
    # negative, and a negative coefficient balancing a positive one is what wrecks extrapolation.
    from scipy.optimize import nnls

    coef, _ = nnls(X / scale, y)
    rank = int(np.linalg.matrix_rank(X / scale))
    return LinearFit(tuple(names), coef / scale, len(rows), source, rank)


def _measured(r: dict) -> tuple[float, float | None]:
    return r["wall_s"]["median"], r.get("peak_bytes")


@dataclass
class CostModel:
    """Fitted latency and memory models of one family on one device/dtype."""

    model: str
    time: dict[str, LinearFit] = field(default_factory=dict)
    memory: dict[str, LinearFit] = field(default_factory=dict)
    pooled_time: LinearFit | None = None
    pooled_memory: LinearFit | None = None
    model_bytes: int = 0
    device: str = "cpu"
    dtype: str = "float32"

    def _pick(self, fits, pooled, strategy):
        f = fits.get(strategy)
        if f is not None and f.n >= MIN_POINTS and f.identified:
            return f
        if pooled is None:
            raise ValueError(f"no measurements to predict strategy={strategy!r} for {self.model}")
        return pooled

    def predict(self, strategy: str, frames: int, size: tuple[int, int], **params) -> dict:
        """Predicted seconds and decode peak bytes (``total_bytes`` adds the weights)."""
        feats = features(self.model, strategy, frames, size, **params)
        tf = self._pick(self.time, self.pooled_time, strategy)
        mf = self._pick(self.memory, self.pooled_memory, strategy)
        sec = max(tf.predict(feats), 0.0)
        mem = max(mf.predict(feats), 0.0)
        return {"seconds": sec, "bytes": mem, "total_bytes": mem + self.model_bytes,
                "time_source": tf.source, "memory_source": mf.source}


def usable(records: list[dict], model: str | None = None) -> list[dict]:
    """Records a cost model can learn from: not a video consumer (encoding time is not decode)."""
    return [r for r in records if r.get("consumer") in ("keep", "discard") and (model is None or r["model"] == model)]


def fit_cost_model(records: list[dict], model: str, *, device: str | None = None, dtype: str | None = None,
                   weights: str | None = None) -> CostModel:
    """Fit :class:`CostModel` for one family from benchmark records (one device, dtype, thread count and
    weight source: a tiny config is a different network from the full-size one)."""
    rs = usable(records, model)
    if device is not None:
        rs = [r for r in rs if same_device(r["device"], device)]
    if dtype is not None:
        rs = [r for r in rs if r["dtype"] == dtype]
    if weights is not None:
        rs = [r for r in rs if r.get("weights") == weights]
    if not rs:
        raise ValueError(f"no usable benchmark records for model={model!r} (device={device}, dtype={dtype}, "
                         f"weights={weights})")
    combos = {(canonical_name(r["device"]), r["dtype"], r.get("env", {}).get("threads"), r.get("weights")) for r in rs}
    if len(combos) > 1:
        raise ValueError(f"records mix (device, dtype, threads, weights) {sorted(map(str, combos))}; "
                         f"pass device=, dtype= and weights=")
    feats = [record_features(r) for r in rs]
    cm = CostModel(model=model, device=canonical_name(rs[0]["device"]), dtype=rs[0]["dtype"],
                   model_bytes=max((r.get("model_bytes") or 0) for r in rs))
    cm.pooled_time = fit_linear(feats, [_measured(r)[0] for r in rs], TIME_FEATURES, "pooled")
    mem_rows = [(f, r) for f, r in zip(feats, rs) if r.get("peak_bytes") is not None]
    if mem_rows:
        cm.pooled_memory = fit_linear([f for f, _ in mem_rows], [r["peak_bytes"] for _, r in mem_rows],
                                      MEMORY_FEATURES, "pooled")
    for strategy in sorted({r["strategy"] for r in rs}):
        idx = [i for i, r in enumerate(rs) if r["strategy"] == strategy]
        cm.time[strategy] = fit_linear([feats[i] for i in idx], [rs[i]["wall_s"]["median"] for i in idx], TIME_FEATURES)
        midx = [i for i in idx if rs[i].get("peak_bytes") is not None]
        if midx:
            cm.memory[strategy] = fit_linear([feats[i] for i in midx], [rs[i]["peak_bytes"] for i in midx],
                                             MEMORY_FEATURES)
    return cm


def record_params(r: dict) -> dict:
    return {"chunk": r.get("chunk"), "tile": r.get("tile"), "overlap": r.get("overlap"),
            "consumer": r.get("consumer", "keep")}


def holdout_errors(records: list[dict], model: str, **kw) -> list[dict]:
    """Leave-one-out: predict every record from a model fitted without it.

    Rows: label, measured and predicted seconds/bytes, relative errors (pred/meas - 1).
    """

    rs = usable(records, model)
    out = []
    for i, r in enumerate(rs):
        rest = rs[:i] + rs[i + 1:]
        try:
            cm = fit_cost_model(rest, model, **kw)
            p = cm.predict(r["strategy"], r["frames"], tuple(r["size"]), **record_params(r))
        except ValueError:
            continue
        sec, mem = _measured(r)
        out.append({"label": label(r), "frames": r["frames"], "size": tuple(r["size"]), "strategy": r["strategy"],
                    "seconds": sec, "pred_seconds": p["seconds"], "time_err": p["seconds"] / sec - 1,
                    "bytes": mem, "pred_bytes": p["bytes"],
                    "memory_err": (p["bytes"] / mem - 1) if mem else None,
                    "time_source": p["time_source"]})
    return out


def error_summary(errors: list[dict]) -> dict:
    """Median and max absolute relative error (fractions) of latency and memory predictions."""
    te = [abs(e["time_err"]) for e in errors]
    me = [abs(e["memory_err"]) for e in errors if e["memory_err"] is not None]
    return {"n": len(errors),
            "time_median": float(np.median(te)) if te else math.nan, "time_max": max(te) if te else math.nan,
            "time_within_25pct": (sum(x <= 0.25 for x in te) / len(te)) if te else math.nan,
            "memory_median": float(np.median(me)) if me else math.nan, "memory_max": max(me) if me else math.nan}


# ---------------------------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------------------------
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "k": 2**10, "m": 2**20, "g": 2**30}


def parse_bytes(text: str | int | float) -> int:
    """'8GiB', '512MB', '1.5g', 1000 → bytes; ValueError naming the value otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError(f"memory budget={text!r} must be positive")
        return int(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if m and not m.group(2):
        raise ValueError(f"memory budget={text!r} needs a unit: 8GiB, 512MB, 1000B (a bare number is ambiguous)")
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"memory budget={text!r} must look like 8GiB, 512MB or 1000B")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value <= 0:
        raise ValueError(f"memory budget={text!r} must be positive")
    return int(value)


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
         strategies=None, overlap: int = 2) -> dict:
    """Fastest candidate predicted to fit ``budget_bytes`` (weights + decode peak).

    Returns {"best": row or None, "rows": every candidate sorted by predicted seconds}.
    """
    get_family(cm.model).latent_shape(frames, *size)  # validates
    strategies = strategies or sorted(set(cm.time) | {"full"})
    rows = []
    for c in candidates(cm.model, frames, size, strategies, overlap=overlap, keep_output=keep_output):
        params = {k: c[k] for k in ("chunk", "tile", "overlap", "consumer")}
        p = cm.predict(c["strategy"], frames, size, **params)
        rows.append({**c, **p, "fits": p["total_bytes"] <= budget_bytes})
    rows.sort(key=lambda r: r["seconds"])
    best = next((r for r in rows if r["fits"]), None)
    return {"best": best, "rows": rows, "budget_bytes": budget_bytes}


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


def plan_text(cm: CostModel, frames: int, size: tuple[int, int], budget_bytes: int, *, keep_output: bool = False) -> str:
    """The planner's answer in one sentence (what the widget shows and the tests check)."""
    res = plan(cm, frames, size, budget_bytes, keep_output=keep_output)
    b = res["best"]
    where = f"{frames} frames at {size[0]}x{size[1]} within {budget_bytes / 2**30:.2f} GiB"
    if b is None:
        low = min(res["rows"], key=lambda r: r["total_bytes"])
        return f"{where}: nothing is predicted to fit (smallest: {describe(low)}, {low['total_bytes'] / 2**30:.2f} GiB)"
    return (f"{where}: {describe(b)} — predicted {b['seconds']:.2f} s, "
            f"{b['total_bytes'] / 2**30:.2f} GiB with weights")


# ---------------------------------------------------------------------------------------------
# the source notes' figures (claims measured on their GPUs, not ours)
# ---------------------------------------------------------------------------------------------
SEED_CLAIMS = {
    # 000_*.txt: block profiling of their tensor-parallel pipeline (Run 10b)
    "decode_ms_per_chunk": 107.0,
    "decode_share": 0.165,
    "size": (320, 576),
    "decode_plus_recompute_share": 0.33,
    "overlap_ceiling": (0.02, 0.08),
    "overlap_ceiling_fps": 0.5,
    # 001_*.txt: the pipeline config (num_frame_per_block=3 latent frames, 320x576) and mesh step time
    "latent_frames_per_chunk": 3,
    "mesh_ms_per_chunk": 282.0,
}


def seed_comparison(cm: CostModel | None, flops_per_px: float | None, *, our_peak_flops: float | None = None) -> dict:
    """Their per-chunk decode claim next to what our model and FLOP count say for the same shape.

    Comparable: the work (FLOPs) of one chunk, which does not depend on the device, and the
    arithmetic of shares. Not comparable: seconds (their GPU, our CPU), so our predicted seconds
    are for this CPU only, and are far outside the sizes we fitted.
    """
    c = SEED_CLAIMS
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
    fits = family is not None and c["latent_frames_per_chunk"] % family.chunk_multiple == 0 and \
        (t * c["latent_frames_per_chunk"]) % family.frame_step == 0
    if cm is not None and not fits:
        out["our_cpu_chunk_s"] = out["our_cpu_chunk_bytes"] = None
        out["not_comparable"] = (f"{family.name} cannot stream the seed's chunk of {c['latent_frames_per_chunk']} latent "
                                 f"frames (chunks of {family.chunk_multiple}k, clips of 1 + {family.frame_step}k frames)")
    elif cm is not None:
        # one steady chunk = the difference between decoding 1 + 3 and 1 latent frames, streamed
        t1 = cm.predict("chunked", 1 + t * c["latent_frames_per_chunk"], (h, w),
                        chunk=c["latent_frames_per_chunk"], consumer="discard")
        t0 = cm.predict("chunked", 1, (h, w), chunk=1, consumer="discard")
        out["our_cpu_chunk_s"] = t1["seconds"] - t0["seconds"]
        out["our_cpu_chunk_bytes"] = t1["bytes"]
    return out
