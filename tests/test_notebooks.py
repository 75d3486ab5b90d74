"""Every notebook, executed once per test session (the ``suite`` fixture: papermill, FAST, as ``vaestudy report``).

Each notebook must run to the end and draw its figures; each ``# NBVAL_CHECK_OUTPUT`` cell must print what its
reference in ``notebooks/nbval_reference/<stem>.json`` holds, after the substitutions of
``tests/check_output_sanitize.cfg`` (addresses, timings, devices). The references are written by
``scripts/clean_notebook.py NOTEBOOK EXECUTED_COPY``. Other cells' outputs are not compared (nbval's "lax" mode).
"""

from __future__ import annotations

import configparser
import difflib
import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # executes every notebook once (shared with test_browser.py)

REPO = Path(__file__).resolve().parents[1]
STEMS = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHECK = "NBVAL_CHECK_OUTPUT"


def _sanitizers() -> list[tuple[re.Pattern, str]]:
    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).with_name("check_output_sanitize.cfg"))
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]


SANITIZERS = _sanitizers()


def comparable(outputs) -> list[tuple[str, str]]:
    """What a check compares: stdout (joined), text/plain results and errors; stderr and images are left out."""
    def clean(text) -> str:
        text = "".join(text) if isinstance(text, list) else text
        for rx, rep in SANITIZERS:
            text = rx.sub(rep, text)
        return text

    out, stdout = [], []
    for o in outputs:
        kind = o.get("output_type")
        if kind == "stream":
            if o.get("name") == "stdout":
                stdout.append(clean(o.get("text", "")))
        elif kind in ("execute_result", "display_data") and "text/plain" in o.get("data", {}):
            out.append(("text/plain", clean(o["data"]["text/plain"])))
        elif kind == "error":
            out.append(("error", f"{o.get('ename')}: {o.get('evalue')}"))
    return ([("stdout", "".join(stdout))] if stdout else []) + out


def references(stem: str) -> dict:
    path = REPO / "notebooks" / "nbval_reference" / f"{stem}.json"
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.mark.parametrize("stem", STEMS)
def test_notebook_runs_and_draws(suite, stem):
    _, executed, summary = suite
    row = next((r for r in summary["notebooks"] if r["stem"] == stem), None)
    assert row is not None, f"{stem} was not executed"
    assert row["status"].startswith("ok"), f"{stem}: {row['status']}"
    assert stem in executed


@pytest.mark.parametrize("stem", STEMS)
def test_check_cells_print_their_reference(suite, stem):
    _, executed, _ = suite
    refs = references(stem)
    cells = [c for c in executed[stem].cells if c.cell_type == "code" and CHECK in c.source]
    sources = {c.source for c in cells}
    stale = [src[:120] for src in refs if src not in sources]
    assert not stale, f"{stem}: references for check cells that no longer exist (rerun scripts/clean_notebook.py): {stale}"
    problems = []
    for cell in cells:
        if cell.source not in refs:
            problems.append(f"a {CHECK} cell has no reference (run scripts/clean_notebook.py on an executed copy):\n"
                            f"{cell.source[:200]}")
            continue
        want, got = comparable(refs[cell.source]), comparable(cell.outputs)
        if want != got:
            diff = "\n".join(difflib.unified_diff(
                [f"{k}: {line}" for k, t in want for line in t.splitlines()],
                [f"{k}: {line}" for k, t in got for line in t.splitlines()], "reference", "this run", lineterm=""))
            problems.append(f"cell {cell.source.splitlines()[1][:80]!r}:\n{diff}")
    assert not problems, f"{stem}: {len(problems)} of {len(cells)} check cells differ\n" + "\n\n".join(problems)


def test_comparable_sanitizes_timings_and_drops_stderr():
    outs = [{"output_type": "stream", "name": "stdout", "text": ["took 1.25 s at 0x7ffe12 on cuda:0\n"]},
            {"output_type": "stream", "name": "stderr", "text": "a warning\n"},
            {"output_type": "execute_result", "data": {"text/plain": "42", "image/png": "..."}}]
    assert comparable(outs) == [("stdout", "took TIME at 0xADDRESS on DEVICE\n"), ("text/plain", "42")]
