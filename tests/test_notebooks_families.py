"""Notebooks executed for every registry family with its tiny config (``vaestudy report --model NAME --weights tiny
--notebooks NB``): notebook 01 (the strategies, the exactness table and the receptive field of each family) and, on
request, notebook 02 (its tiling seams on a real clip).

Run by ``make test-families`` (CI runs it after ``make test``): notebook 01 for all 15 families, 5-10 minutes on a
2-core CPU, on top of ``make test``'s budget, hence a target of its own. Opt-in elsewhere:
``VAESTUDY_ALL_FAMILIES=1 pytest tests/test_notebooks_families.py``; ``VAESTUDY_FAMILY_NOTEBOOKS=01,02`` adds notebook
02 (thirty executions). ``make test`` itself executes every notebook once with the default family
(``tests/test_notebooks.py``), checks in seconds that the sizes and strategy rows notebooks 01 and 02 derive are
valid for every family (``tests/test_notebooks_generic_01_02.py``), and tests every family's facts at the package
level (``tests/test_families_all.py``, ``tests/test_streams_families.py``).
"""

from __future__ import annotations

import json
import os

import pytest

from vaestudy.registry import FAMILIES
from vaestudy.report import build_report

NOTEBOOKS = {"01": "01_decode_strategies.ipynb", "02": "02_tiling_and_seams.ipynb"}
WANTED = os.environ.get("VAESTUDY_FAMILY_NOTEBOOKS", "01").split(",")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("VAESTUDY_ALL_FAMILIES") != "1",
                       reason="opt-in (VAESTUDY_ALL_FAMILIES=1, or make test-families): one notebook execution per "
                              "family, beyond make test's budget"),
]


def test_the_requested_notebooks_exist():
    bad = [k for k in WANTED if k not in NOTEBOOKS]
    assert not bad, f"VAESTUDY_FAMILY_NOTEBOOKS={','.join(WANTED)!r}: unknown {bad}; valid: {', '.join(NOTEBOOKS)}"


@pytest.mark.parametrize("notebook", [NOTEBOOKS[k] for k in WANTED if k in NOTEBOOKS])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_notebook_runs_for_every_family(family, notebook, tmp_path):
    code = build_report(model=family, weights="tiny", notebooks=[notebook], out_dir=tmp_path)
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    (row,) = summary["notebooks"]
    assert code == 0 and row["status"].startswith("ok"), row["status"]
    assert row["parameters"]["MODEL"] == family and row["parameters"]["WEIGHTS"] == "tiny"
