"""Notebook 01 executed for every registry family with its tiny config (``vaestudy report --model NAME --weights tiny
--notebooks 01_decode_strategies.ipynb``): the strategies, exactness table and receptive field of each family.

Opt-in: ``VAESTUDY_ALL_FAMILIES=1 pytest tests/test_notebooks_families.py``. Fifteen executions take 15-30 minutes on
a 2-core CPU, beyond the CI budget of ``make test``; CI executes every notebook once with the default family (see
``tests/test_notebooks.py``), and every family's facts are tested at the package level (``tests/test_families_all.py``,
``tests/test_streams_families.py``).
"""

from __future__ import annotations

import json
import os

import pytest

from vaestudy.registry import FAMILIES
from vaestudy.report import build_report

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("VAESTUDY_ALL_FAMILIES") != "1",
                       reason="opt-in (VAESTUDY_ALL_FAMILIES=1): one notebook execution per family exceeds CI's budget"),
]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_notebook_01_runs_for_every_family(family, tmp_path):
    code = build_report(model=family, weights="tiny", notebooks=["01_decode_strategies.ipynb"], out_dir=tmp_path)
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    (row,) = summary["notebooks"]
    assert code == 0 and row["status"].startswith("ok"), row["status"]
    assert row["parameters"]["MODEL"] == family
