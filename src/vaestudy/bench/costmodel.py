"""A latency and memory model of a decode, fitted on benchmark records: features of a configuration, the
records a fit may use, the non-negative least-squares fit, its measured range and its hold-out error."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vaestudy.bench.config import DTYPES
from vaestudy.bench.store import label
from vaestudy.decode.strategies import STREAMING, get_strategy
from vaestudy.decode.streams import chunk_plan
from vaestudy.decode.tiled import TilePlan, default_tile_plan
from vaestudy.devices import canonical_name, same_device
from vaestudy.registry.families import get_family
from vaestudy.registry.load import check_weight_source

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
        "tiles": ntiles,  # tiles per frame (1: untiled), and latent frames per streamed call: not model features,
        "chunk": chunk if strategy in STREAMING else None,  # they name the setup (see fit_range)
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
    hardware: str | None = None  # the card's or CPU's name (env.device_name), when the records carry it
    weights: str | None = None  # the weight source of the records
    threads: int | None = None
    measured: dict | None = None  # fit_range of the records the fit used; None: unknown (a hand-built model)
    selection: Selection | None = None

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



# The network a weight source builds: pretrained and random weights share the family's full-size config (time and
# memory do not depend on weight values); tiny and embedded are small configs of their own.
WEIGHT_CONFIG = {"pretrained": "full-size", "random": "full-size", "tiny": "tiny", "embedded": "embedded"}


def hardware_of(record: dict) -> str | None:
    """The card's or CPU's name a record was measured on (``env.device_name``), None for records without it."""
    return (record.get("env") or {}).get("device_name")


@dataclass
class Selection:
    """The records of one family a fit may use, and how many of the input were left out, by reason."""

    records: list[dict]
    total: int
    excluded: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """'4 of 11 records (left out: 7 of other families)'."""
        left = ", ".join(f"{n} {why}" for why, n in self.excluded.items() if n)
        return f"{len(self.records)} of {self.total} records" + (f" (left out: {left})" if left else "")


def _inventory(records: list[dict]) -> str:
    """What a set of records holds, one entry per (device, card, dtype, weights): for error messages."""
    counts: dict[str, int] = {}
    for r in records:
        k = f"{r.get('device')} {hardware_of(r) or '(card not recorded)'} {r.get('dtype')} {r.get('weights')}"
        counts[k] = counts.get(k, 0) + 1
    return "; ".join(f"{k} x{n}" for k, n in sorted(counts.items())) or "nothing"


def select_records(records: list[dict], model: str, *, device: str | None = None, dtype: str | None = None,
                   weights: str | None = None, hardware: str | None = None) -> Selection:
    """The records of ``model`` measured on ``device`` (any spelling), on a card whose name contains ``hardware``
    (case-insensitive, e.g. 'H200'), in ``dtype`` with ``weights``; None keeps every value. Video-consumer records
    never count (encoding is not decode). ValueError naming a filter that is not valid."""
    get_family(model)
    if device is not None:
        device = canonical_name(device)
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not a dtype of the records; valid: {', '.join(DTYPES)}")
    if weights is not None:
        check_weight_source(weights)
    if hardware is not None and not str(hardware).strip():
        raise ValueError(f"hardware={hardware!r} must name (part of) a card or CPU, e.g. 'H200'")
    reasons = {"video-consumer records": lambda r: r.get("consumer") in ("keep", "discard"),
               "of other families": lambda r: r.get("model") == model}
    if device is not None:
        reasons[f"from devices other than {device}"] = lambda r: same_device(r["device"], device)
    if hardware is not None:
        reasons[f"from cards not matching {hardware.strip()!r}"] = \
            lambda r: hardware.strip().lower() in (hardware_of(r) or "").lower()
    if dtype is not None:
        reasons[f"in dtypes other than {dtype}"] = lambda r: r.get("dtype") == dtype
    if weights is not None:
        reasons[f"with weights other than {weights}"] = lambda r: r.get("weights") == weights
    rs, excluded = list(records), {}
    for why, keep in reasons.items():
        kept = [r for r in rs if keep(r)]
        excluded[why] = len(rs) - len(kept)
        rs = kept
    return Selection(rs, len(records), excluded)


def fit_cost_model(records: list[dict], model: str, *, device: str | None = None, dtype: str | None = None,
                   weights: str | None = None, hardware: str | None = None) -> CostModel:
    """Fit :class:`CostModel` for one family from benchmark records (one device, card, dtype, thread count and
    weight source: a tiny config is a different network from the full-size one; records of two named cards at the
    same device index are two devices). ValueError when the filters leave nothing, or what they leave is mixed."""
    sel = select_records(records, model, device=device, dtype=dtype, weights=weights, hardware=hardware)
    rs = sel.records
    if not rs:
        raise ValueError(f"no usable benchmark records for model={model!r} (device={device}, hardware={hardware}, "
                         f"dtype={dtype}, weights={weights}); the {model} records hold: "
                         f"{_inventory(usable(records, model))}")
    combos = {(canonical_name(r["device"]), r["dtype"], r.get("env", {}).get("threads"), r.get("weights")) for r in rs}
    if len(combos) > 1:
        raise ValueError(f"records mix (device, dtype, threads, weights) {sorted(map(str, combos))}; "
                         f"pass device=, dtype= and weights=")
    cards = sorted({h for h in map(hardware_of, rs) if h})  # records without a name (older ones) join any: kept
    if len(cards) > 1:
        raise ValueError(f"records mix hardware {cards} at device {canonical_name(rs[0]['device'])}; pass hardware= "
                         f"(part of one name)")
    feats = [record_features(r) for r in rs]
    cm = CostModel(model=model, device=canonical_name(rs[0]["device"]), dtype=rs[0]["dtype"],
                   model_bytes=max((r.get("model_bytes") or 0) for r in rs),
                   hardware=cards[0] if cards else None, weights=rs[0].get("weights"),
                   threads=rs[0].get("env", {}).get("threads"), measured=fit_range(rs), selection=sel)
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


# ---------------------------------------------------------------------------------------------
# the measured range: where a fit is an interpolation
# ---------------------------------------------------------------------------------------------
def fit_range(records: list[dict]) -> dict:
    """What the records span: ``frames`` and ``pixels`` (per frame) as (min, max), the ``sizes`` (H, W) measured,
    the ``weights`` sources, their ``configs`` (:data:`WEIGHT_CONFIG`) and ``model_bytes`` (min, max; None when no
    record has it). ValueError on no records."""
    if not records:
        raise ValueError("fit_range needs at least one record (got none)")
    frames = [int(r["frames"]) for r in records]
    sizes = sorted({(int(r["size"][0]), int(r["size"][1])) for r in records})
    pixels = [h * w for h, w in sizes]
    weights = sorted({r.get("weights") for r in records if r.get("weights")})
    mb = [r["model_bytes"] for r in records if r.get("model_bytes")]
    return {"n": len(records), "frames": (min(frames), max(frames)), "pixels": (min(pixels), max(pixels)),
            "sizes": sizes, "weights": weights, "configs": sorted({WEIGHT_CONFIG.get(w, w) for w in weights}),
            "model_bytes": (min(mb), max(mb)) if mb else None,
            "setups": sorted({setup(r["strategy"], record_features(r)) for r in records}, key=str)}


def setup(strategy: str, feats: dict) -> tuple[str, int | None, int]:
    """(strategy, latent frames per streamed call or None, tiles per frame): what a candidate shares with a record
    when the same decode was measured (features from :func:`features`)."""
    return strategy, feats["chunk"], feats["tiles"]


def setup_text(key: tuple[str, int | None, int]) -> str:
    strategy, chunk, tiles = key
    return strategy + (f" chunk={chunk}" if chunk is not None else "") + (f" {tiles} tiles" if tiles > 1 else "")


def unmeasured_setup(row: dict, rng: dict) -> str | None:
    """A sentence when the setup of plan row ``row`` (strategy, chunk, tile count) was never measured, so its
    prediction extrapolates along chunk size or tile count even inside the frames and pixels measured; else None."""
    key = (row["strategy"], row.get("chunk"), row.get("tiles", 1))
    if key in rng["setups"]:
        return None
    return (f"setup: {setup_text(key)} was never measured; the records hold "
            f"{', '.join(setup_text(k) for k in rng['setups'])}")


def _span(lo, hi, fmt=str) -> str:
    return f"only {fmt(lo)}" if lo == hi else f"{fmt(lo)} to {fmt(hi)}"


def range_text(rng: dict) -> str:
    """The measured range in words: 'frames 81, 480x832 (399,360 px per frame), random weights (full-size, 242 MiB)'."""
    sizes = ", ".join(f"{h}x{w}" for h, w in rng["sizes"])
    lo, hi = rng["frames"]
    plo, phi = rng["pixels"]
    px = f"{plo:,}" if plo == phi else f"{plo:,} to {phi:,}"
    model = f"{'/'.join(rng['weights']) or 'unrecorded'} weights ({'/'.join(rng['configs']) or 'config unknown'}"
    if rng["model_bytes"]:
        mlo, mhi = rng["model_bytes"]
        model += f", {mlo / 2**20:.1f} MiB" if mlo == mhi else f", {mlo / 2**20:.1f} to {mhi / 2**20:.1f} MiB"
    return f"frames {lo if lo == hi else f'{lo} to {hi}'}, {sizes} ({px} px per frame), {model})"


def outside_range(request: dict, rng: dict) -> list[str]:
    """One sentence per way ``request`` lies outside the measured range ``rng`` (:func:`fit_range`); [] inside it.

    ``request``: ``frames`` (pixel frames), ``size`` (H, W) in pixels, optionally ``weights`` (the weight source the
    planned decode uses) and ``model_bytes``. Each sentence names the request's value and the measured range.
    """
    missing = [k for k in ("frames", "size") if k not in request]
    if missing:
        raise ValueError(f"request={request!r} lacks {missing}; it needs frames (pixel frames) and size (H, W)")
    frames, size = request["frames"], request["size"]
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ValueError(f"request frames={frames!r} must be a positive whole number of pixel frames")
    if len(size) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in size):
        raise ValueError(f"request size={size!r} must be (height, width), two positive whole numbers of pixels")
    out = []
    lo, hi = rng["frames"]
    if not lo <= frames <= hi:
        out.append(f"frames: the request's {frames} frames lie outside the measured range ({_span(lo, hi)} frames)")
    h, w = size
    lo, hi = rng["pixels"]
    if not lo <= h * w <= hi:
        sizes = ", ".join(f"{a}x{b}" for a, b in rng["sizes"])
        out.append(f"pixels per frame: the request's {h}x{w} = {h * w:,} px lies outside the measured range "
                   f"({_span(lo, hi, lambda v: f'{v:,}')} px: {sizes})")
    weights = request.get("weights")
    if weights is not None:
        check_weight_source(weights)
        config = WEIGHT_CONFIG[weights]
        if config not in rng["configs"]:
            measured = ", ".join(f"{w} ({WEIGHT_CONFIG.get(w, w)})" for w in rng["weights"]) or "no weight source"
            out.append(f"model size: the request decodes {weights} weights (the {config} network); the fit measured "
                       f"only {measured} weights")
    mb = request.get("model_bytes")
    if mb is not None and rng["model_bytes"] and not rng["model_bytes"][0] <= mb <= rng["model_bytes"][1]:
        lo, hi = rng["model_bytes"]
        out.append(f"model size: the request's {mb / 2**20:.1f} MiB of weights lie outside the measured range "
                   f"({_span(lo, hi, lambda v: f'{v / 2**20:.1f}')} MiB)")
    return out


def record_params(r: dict) -> dict:
    return {"chunk": r.get("chunk"), "tile": r.get("tile"), "overlap": r.get("overlap"),
            "consumer": r.get("consumer", "keep")}


def holdout_errors(records: list[dict], model: str, **kw) -> list[dict]:
    """Leave-one-out: predict every record that :func:`select_records` keeps (``kw``: its filters) from a model
    fitted without it. The points lie inside the measured range, so this error says nothing about a request outside it.

    Rows: label, measured and predicted seconds/bytes, relative errors (pred/meas - 1).
    """

    rs = select_records(records, model, **kw).records  # only the records the fit may use are predicted
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


def holdout_text(summary: dict, rng: dict | None = None) -> str:
    """The fit-quality sentence: a leave-one-out error, valid within the measured range only (named when known)."""
    where = f" ({range_text(rng)})" if rng else ""
    return (f"held-out (leave-one-out) prediction error over {summary['n']} measured points, within the measured "
            f"range only{where}: latency median {summary['time_median']:.1%}, max {summary['time_max']:.1%} "
            f"({summary['time_within_25pct']:.0%} within 25%); memory median {summary['memory_median']:.1%}, "
            f"max {summary['memory_max']:.1%}. Outside that range this error does not apply")
