"""Commit notebooks clean: no outputs, no execution counts, no widget state or timing metadata.

The reference outputs nbval compares ``# NBVAL_CHECK_OUTPUT`` cells against live beside the notebook, in
``notebooks/nbval_reference/<stem>.json`` (cell source -> outputs); the repository's root ``conftest.py`` hands them
to nbval at collection time, so the notebooks themselves stay clean.

usage: python scripts/clean_notebook.py NOTEBOOK [EXECUTED_COPY]
With an executed copy (e.g. from papermill in build/), the references are taken from it; without one,
outputs still stored in the notebook become the references (existing references are kept otherwise).
"""

import json
import sys
from pathlib import Path

import nbformat

CHECK = "NBVAL_CHECK_OUTPUT"


def reference_path(notebook: str | Path) -> Path:
    p = Path(notebook)
    return p.parent / "nbval_reference" / f"{p.stem}.json"


def clean(path: str, executed: str | None = None) -> None:
    nb = nbformat.read(path, as_version=4)
    ran = nbformat.read(executed, as_version=4) if executed else None
    ran_by_source = {c.source: c for c in ran.cells if c.cell_type == "code"} if ran else {}
    ref_path = reference_path(path)
    refs = json.loads(ref_path.read_text()) if ref_path.exists() else {}
    new_refs = {}
    for cell in nb.cells:
        for key in ("execution", "papermill", "widgets"):
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        if CHECK in cell.source:
            src = ran_by_source.get(cell.source)
            outputs = src.outputs if src is not None else (cell.outputs or refs.get(cell.source))
            if not outputs:
                raise SystemExit(f"{path}: a {CHECK} cell has no output to keep as its reference:\n{cell.source[:200]}")
            kept = [dict(o) for o in outputs if o.get("output_type") != "stream" or o.get("name") != "stderr"]
            for o in kept:
                o.pop("execution_count", None)
            new_refs[cell.source] = kept
        cell.execution_count = None
        cell.outputs = []
    for key in ("widgets", "papermill"):
        nb.metadata.pop(key, None)
    nbformat.write(nb, path)
    if new_refs:
        ref_path.parent.mkdir(exist_ok=True)
        ref_path.write_text(json.dumps(new_refs, indent=1, ensure_ascii=False, default=dict) + "\n")
    elif ref_path.exists():
        ref_path.unlink()


if __name__ == "__main__":
    clean(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
