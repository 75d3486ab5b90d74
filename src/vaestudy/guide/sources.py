"""The claims table as data: each source note's claims and figures, read once from ``claims.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from vaestudy.registry.families import FAMILIES

CLAIMS_TABLE_FILE = "claims.toml"  # next to this module; packaged through [tool.setuptools.package-data]

# What a row's verdict rests on (the table's ``evidence`` field), in the order the notebook counts them.
EVIDENCE: dict[str, str] = {
    "re-derived": "re-derived arithmetic",  # re-does a note's own arithmetic or reads the configs: nothing is run
    "measured-here": "measured here",  # measured by this run, on this machine
    "gpu-reference": "measured on a GPU reference",  # read from reference/<name>/: measured elsewhere, not here
    "not-measured": "not measured",  # nothing here can measure it (a pipeline, weights we cannot load offline)
}


@dataclass(frozen=True)
class SourceClaim:
    """One claim of a source: what it says, the figures it states and the registry family it concerns (if one)."""

    key: str
    source: str  # a code of SOURCES: "000".."004" (seed notes) or "anchors" (FINDINGS.md)
    claim: str
    evidence: str = ""  # a key of EVIDENCE: what the verdict rests on
    family: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None  # the reference/<name>/ folder a gpu-reference row reads (its records' name)


def read_claims_table(text: str) -> tuple[dict[str, dict[str, str]], dict[str, SourceClaim]]:
    """``(sources, claims by key in table order)`` from the TOML text of a claims table; ValueError on a bad row."""
    data = tomllib.loads(text)
    sources = data.get("sources", {})
    for code, src in sources.items():
        missing = {"file", "about", "short", "page"} - set(src)
        if missing:
            raise ValueError(f"source {code!r} lacks {sorted(missing)}; each source gives file, about, short and page")
    claims: dict[str, SourceClaim] = {}
    for i, row in enumerate(data.get("claim", [])):
        unknown = set(row) - {f for f in SourceClaim.__dataclass_fields__}
        if unknown:
            raise ValueError(f"claim #{i} ({row.get('key')!r}) has unknown fields {sorted(unknown)}")
        c = SourceClaim(**row)
        if c.key in claims:
            raise ValueError(f"claim key={c.key!r} appears twice in the claims table")
        if c.source not in sources:
            raise ValueError(f"claim {c.key!r}: source={c.source!r} is not in [sources] ({', '.join(sources)})")
        if c.family is not None and c.family not in FAMILIES:
            raise ValueError(f"claim {c.key!r}: family={c.family!r} is not a registry family ({', '.join(FAMILIES)})")
        if c.evidence not in EVIDENCE:
            raise ValueError(f"claim {c.key!r}: evidence={c.evidence!r}; valid: {', '.join(EVIDENCE)}")
        if (c.evidence == "gpu-reference") != (c.reference is not None):
            raise ValueError(f"claim {c.key!r}: evidence={c.evidence!r} with reference={c.reference!r}; a "
                             "gpu-reference row names its reference folder, and only such a row does")
        claims[c.key] = c
    return sources, claims


_TABLE = read_claims_table(resources.files(__package__).joinpath(CLAIMS_TABLE_FILE).read_text(encoding="utf-8"))
SOURCE_CLAIMS: dict[str, SourceClaim] = _TABLE[1]  # every claim by key, in the table's order
SOURCES: dict[str, str] = {k: f"{v['file']} ({v['about']})" for k, v in _TABLE[0].items()}  # code -> "file (what)"
SOURCE_FILES: dict[str, str] = {k: v["file"] for k, v in _TABLE[0].items()}  # code -> file name
SOURCE_NAMES: dict[str, str] = {k: v["short"] for k, v in _TABLE[0].items()}  # code -> a short name for axes
SOURCE_PAGES: dict[str, str] = {k: v["page"] for k, v in _TABLE[0].items()}  # code -> its summary in sources/


def source_claim(key: str) -> SourceClaim:
    """The row of the claims table named ``key``; ValueError listing the keys otherwise."""
    if key not in SOURCE_CLAIMS:
        raise ValueError(f"claim key={key!r} is not in {CLAIMS_TABLE_FILE}; valid keys: {', '.join(SOURCE_CLAIMS)}")
    return SOURCE_CLAIMS[key]


def seed_pipeline() -> dict:
    """The pipeline figures of 000 and 001 in the shape :func:`vaestudy.bench.planner.seed_comparison` takes them.

    Read from the claims table's rows ``decode-per-chunk`` and ``overlap-ceiling`` (000) and
    ``overlap-hides-decode`` (001), so each figure is typed once, in ``claims.toml``.
    """
    chunk, ceiling = source_claim("decode-per-chunk").figures, source_claim("overlap-ceiling").figures
    mesh = source_claim("overlap-hides-decode").figures
    return {"decode_ms_per_chunk": chunk["decode_ms_per_chunk"], "decode_share": chunk["decode_share"],
            "size": (chunk["height"], chunk["width"]),
            "decode_plus_recompute_share": ceiling["decode_plus_recompute_share"],
            "overlap_ceiling": (ceiling["ceiling_low"], ceiling["ceiling_high"]),
            "overlap_ceiling_fps": ceiling["ceiling_fps"],
            "latent_frames_per_chunk": mesh["latent_frames_per_chunk"], "mesh_ms_per_chunk": mesh["mesh_ms_per_chunk"]}


def seed_shares() -> dict[str, float]:
    """000's chunk shares as keyword arguments of :func:`vaestudy.pipelines.overlap.scope_ceiling`."""
    seed = seed_pipeline()
    return {"decode_share": seed["decode_share"], "decode_plus_recompute": seed["decode_plus_recompute_share"]}
