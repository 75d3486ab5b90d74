"""Benchmark records: the resumable JSONL store, grouping, paired ratios, summaries and plot series."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import torch

from vaestudy.tables import Col, format_table


# ---------------------------------------------------------------------------------------------
# results store
# ---------------------------------------------------------------------------------------------
class ResultStore:
    """Append-only JSONL file, one measurement per line.

    ``append`` encodes the whole line first and hands it to the kernel in one ``os.write`` on an
    ``O_APPEND`` descriptor, then ``fsync``: a record is either entirely on disk or absent, and an
    interrupt (Ctrl-C) cannot lose records already appended. ``load`` skips a torn last line
    (from a crash or a full disk) and counts it in ``self.skipped``.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.skipped = 0

    def append(self, record: dict) -> None:
        line = (json.dumps(record, sort_keys=True, default=_json_default) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # A torn earlier line (crash mid-write) must not swallow this record: start on a fresh line.
            if os.fstat(fd).st_size and not self._ends_with_newline():
                line = b"\n" + line
            n = os.write(fd, line)
            if n != len(line):
                raise OSError(f"short write to {self.path}: {n} of {len(line)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def load(self) -> list[dict]:
        self.skipped = 0
        if not self.path.exists():
            return []
        out = []
        with open(self.path, "rb") as f:
            for raw in f:
                raw = raw.strip()
                if not raw:
                    continue
                try:
                    out.append(json.loads(raw))
                except json.JSONDecodeError:
                    self.skipped += 1
        return out

    def keys(self) -> set[str]:
        return {r.get("key") for r in self.load()}

    def by_key(self) -> dict[str, dict]:
        return {r["key"]: r for r in self.load() if "key" in r}


# ---------------------------------------------------------------------------------------------
# tables and summaries
# ---------------------------------------------------------------------------------------------
GROUP_FIELDS = ("run_id", "model", "weights", "frames", "size", "device", "dtype")


def _group_key(r: dict) -> tuple:
    return tuple(json.dumps(r.get(k), default=list) for k in GROUP_FIELDS)


def label(r: dict) -> str:
    """Short name of a record's strategy, parameters and consumer, e.g. ``chunked c=1 keep``."""
    parts = [r["strategy"]]
    if r.get("chunk") is not None:
        parts.append(f"c={r['chunk']}")
    if r.get("tile") is not None:
        t, o = r["tile"], r.get("overlap")
        parts.append(f"t={t[0]}x{t[1]}/o={o[0]}" if isinstance(t, list) else f"t={t}/o={o}")
    parts.append(r.get("consumer", ""))
    return " ".join(parts)


def with_ratios(records: list[dict]) -> list[dict]:
    """Rows with every figure divided by the ``full`` record of the same run and shape.

    A ``full`` reference is taken only from the same ``run_id`` (measured side by side), with the
    same consumer when there is one, else any consumer. No reference → ratios are None. When both
    were measured interleaved with the same number of repeats, time ratios are medians of the
    per-repeat ratios (``paired=True``; ``wall_ratio_min``/``_max`` give their range).
    """
    refs: dict[tuple, list[dict]] = {}
    for r in records:
        if r["strategy"] == "full":
            refs.setdefault(_group_key(r), []).append(r)
    rows = []
    for r in records:
        cands = refs.get(_group_key(r), [])
        ref = next((f for f in cands if f.get("consumer") == r.get("consumer")), cands[0] if cands else None)
        row = {
            "label": label(r), "strategy": r["strategy"], "frames": r["frames"], "size": tuple(r["size"]),
            "consumer": r.get("consumer"), "run_id": r.get("run_id"),
            "wall_s": r["wall_s"]["median"], "wall_min_s": r["wall_s"]["min"], "wall_max_s": r["wall_s"]["max"],
            "first_frame_s": r["first_frame_s"]["median"], "fps": r["fps"], "peak_bytes": r.get("peak_bytes"),
            "chunk_s": r.get("chunk_s_steady_median"), "jitter_s": r.get("chunk_jitter_s"),
            "fraction_of_peak": r.get("fraction_of_peak"), "peak_error": r.get("peak_error"), "flops": r.get("flops"),
            "latent_frames": r["latent_shape"][1], "ref": ref is not None,
        }
        if ref is not None:
            fw = ref["wall_s"]["median"]
            row.update(
                wall_ratio=row["wall_s"] / fw,
                fps_ratio=row["fps"] / ref["fps"],
                first_frame_ratio=row["first_frame_s"] / fw,  # against the full decode's whole latency
                peak_ratio=(row["peak_bytes"] / ref["peak_bytes"]) if row["peak_bytes"] and ref.get("peak_bytes") else None,
                paired=False,
            )
            pw, rw = ref.get("wall_s_all") or [], r.get("wall_s_all") or []
            if r.get("interleaved") and ref.get("interleaved") and len(pw) == len(rw) and len(rw) > 1:
                # interleaved repeats ran back to back: the median of per-repeat ratios cancels load drifts
                ratios = [a / b for a, b in zip(rw, pw)]
                row.update(paired=True, wall_ratio=statistics.median(ratios),
                           wall_ratio_min=min(ratios), wall_ratio_max=max(ratios),
                           fps_ratio=statistics.median(b / a for a, b in zip(rw, pw)),
                           first_frame_ratio=statistics.median(f / b for f, b in zip(r["first_frame_s_all"], pw)))
        else:
            row.update(wall_ratio=None, fps_ratio=None, first_frame_ratio=None, peak_ratio=None, paired=False)
        rows.append(row)
    return rows




def format_summary(records: list[dict]) -> str:
    """Plain-text summary: median (min-max) wall, first frame, fps, peak MB, and ratios to ``full``."""
    rows = with_ratios(records)
    pct = lambda r: "ERROR" if r["peak_error"] else (r["fraction_of_peak"] * 100 if r["fraction_of_peak"] else None)  # noqa: E731
    cols = [Col("strategy", "label"), Col("F", "frames"), Col("HxW", lambda r: f"{r['size'][0]}x{r['size'][1]}"),
            Col("wall s (min-max)", lambda r: f"{r['wall_s']:.3f} ({r['wall_min_s']:.3f}-{r['wall_max_s']:.3f})"),
            Col("x full", "wall_ratio", ".2f"), Col("1st frame s", "first_frame_s", ".3f"),
            Col("/full wall", "first_frame_ratio", ".3f"), Col("fps", "fps", ".2f"), Col("x full", "fps_ratio", ".2f"),
            Col("peak MB", lambda r: r["peak_bytes"] / 2**20 if r["peak_bytes"] is not None else None, ".0f"),
            Col("x full", "peak_ratio", ".2f"), Col("%peak", pct, "")]
    lines = [format_table(rows, cols, digits=1)]
    errors = sorted({r["peak_error"] for r in rows if r["peak_error"]})
    lines += [f"%peak ERROR: {e}" for e in errors]
    if any(not r["ref"] for r in rows):
        lines.append("('-' ratio: no full decode of the same shape measured in the same run)")
    if any(r.get("paired") for r in rows):
        lines.append("time ratios of interleaved runs are medians of per-repeat ratios (repeat i of a strategy against "
                     "repeat i of full, run back to back):")
        for r in rows:
            if r.get("paired") and r["strategy"] != "full":
                lines.append(f"  {r['label']:<30} {r['frames']:>3}x{r['size'][0]}x{r['size'][1]}: wall x full "
                             f"{r['wall_ratio']:.3f} (per-repeat {r['wall_ratio_min']:.3f}-{r['wall_ratio_max']:.3f}), "
                             f"fps x full {r['fps_ratio']:.3f}, first frame / full wall {r['first_frame_ratio']:.3f}")
    return "\n".join(lines)


def select(records: list[dict], **where) -> list[dict]:
    """Records whose fields equal every ``where`` value (tuples compared as lists)."""
    def norm(v):
        return list(v) if isinstance(v, tuple) else v

    return [r for r in records if all(norm(r.get(k)) == norm(v) for k, v in where.items())]


def column(rows: list[dict], name: str) -> list:
    return [r.get(name) for r in rows]


def series(records: list[dict], x: str, y: str = "wall_s", **where) -> dict:
    """Plot-ready data: {label: {"x": [...], "median": [...], "min": [...], "max": [...]}} sorted by x.

    ``y`` is a record field; a {median, min, max} dict gives the spread, a number gives none
    (``fps`` takes its spread from wall time).
    ``x`` may be a record field or ``"pixels"`` (height * width).
    """
    out: dict[str, dict] = {}
    for r in sorted(select(records, **where), key=lambda r: _xval(r, x)):
        v = r.get(y)
        if y == "fps":  # spread of throughput from the spread of wall time
            w = r["wall_s"]
            v = {"median": r["frames"] / w["median"], "min": r["frames"] / w["max"], "max": r["frames"] / w["min"]}
        if v is None:
            continue
        d = out.setdefault(label(r), {"x": [], "median": [], "min": [], "max": [], "strategy": r["strategy"]})
        d["x"].append(_xval(r, x))
        if isinstance(v, dict):
            d["median"].append(v["median"]), d["min"].append(v["min"]), d["max"].append(v["max"])
        else:
            d["median"].append(v), d["min"].append(v), d["max"].append(v)
    return out


def _xval(r: dict, x: str):
    if x == "pixels":
        return r["size"][0] * r["size"][1]
    if x == "latent_frames":
        return r["latent_shape"][1]
    return r[x]


def growth(records: list[dict], field_name: str = "peak_bytes", x: str = "frames", **where) -> float | None:
    """Ratio of ``field_name`` at the largest x to the smallest x among matching records (one label)."""
    rs = sorted(select(records, **where), key=lambda r: _xval(r, x))
    if len(rs) < 2 or not rs[0].get(field_name):
        return None
    a, b = rs[0][field_name], rs[-1][field_name]
    a = a["median"] if isinstance(a, dict) else a
    b = b["median"] if isinstance(b, dict) else b
    return b / a


def _json_default(o):
    if isinstance(o, (tuple, set)):
        return list(o)
    if isinstance(o, torch.dtype):
        return str(o).replace("torch.", "")
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot store {type(o).__name__} in a result record")
