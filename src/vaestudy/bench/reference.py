"""Measurements taken elsewhere (a GPU), shipped in ``reference/<name>/`` with a README giving their provenance.

Each folder holds ``bench.jsonl`` (records of this project's own ``vaestudy bench``, the same fields as local
records) and may hold ``anchors.jsonl`` (independent timings beside a public figure), ``levers.json`` and
``peak.json`` (the card's measured matmul and Conv3d ceilings). Readers label these rows as GPU reference
measurements, never as measurements of this machine. The folder lives in the checkout (``reference/`` beside
``src/``), so these functions need a source checkout, as the notebooks do.
"""

from __future__ import annotations

import json
from pathlib import Path

from vaestudy.bench.roofline import fraction_of_peak

REFERENCE_ROOT = Path(__file__).resolve().parents[3] / "reference"
FILES = ("bench.jsonl", "anchors.jsonl", "levers.json", "peak.json")


def reference_names() -> list[str]:
    """The reference folders shipped in the checkout (e.g. ``h200-2026-11-29``)."""
    if not REFERENCE_ROOT.is_dir():
        return []
    return sorted(p.name for p in REFERENCE_ROOT.iterdir() if (p / "bench.jsonl").exists())


def reference_dir(name: str) -> Path:
    """The folder of reference ``name``; ValueError naming it and the valid names otherwise."""
    names = reference_names()
    if name not in names:
        raise ValueError(f"reference={name!r} is not shipped in {REFERENCE_ROOT}; valid: {', '.join(names) or 'none'}")
    return REFERENCE_ROOT / name


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def load_reference(name: str) -> dict:
    """Every file of reference ``name``: ``bench`` and ``anchors`` (lists of records), ``levers`` and ``peak``
    (dicts, empty when absent), ``name`` and ``readme`` (the provenance file's path)."""
    d = reference_dir(name)
    out = {"name": name, "readme": d / "README.md", "bench": _jsonl(d / "bench.jsonl"),
           "anchors": _jsonl(d / "anchors.jsonl")}
    for key in ("levers", "peak"):
        p = d / f"{key}.json"
        out[key] = json.loads(p.read_text()) if p.exists() else {}
    # The records' own machine_peak_flops came from the bench's small CPU-sized probe shapes (a fraction of peak
    # above 1 resulted); the card's ceiling is the best rate peak.json measured at decoder-sized shapes.
    peak = max(out["peak"].values()) * 1e12 if out["peak"] else None
    for r in out["bench"]:
        r.setdefault("source", f"reference/{name}")
        if peak and r.get("flops"):
            r["recorded_machine_peak_flops"] = r.get("machine_peak_flops")
            r["machine_peak_flops"] = peak
            wall = r["wall_s"]["median"] if isinstance(r["wall_s"], dict) else r["wall_s"]
            r["fraction_of_peak"], r["peak_error"] = fraction_of_peak(r["flops"], wall, peak)
    return out
