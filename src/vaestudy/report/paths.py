"""Where the report reads and writes: the checkout, and the folder resumable measurements go to."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The checkout holding notebooks/ (the current directory or one of its parents)."""
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "notebooks").is_dir() and (d / "pyproject.toml").exists():
            return d
    raise FileNotFoundError(f"no notebooks/ folder with a pyproject.toml above {here}; run from the vaestudy checkout")


RESULTS_DIR_ENV = "VAESTUDY_RESULTS_DIR"


def results_dir() -> Path:
    """Where notebooks append their resumable measurements: ``$VAESTUDY_RESULTS_DIR`` (set by ``build_report`` to
    ``OUT_DIR/results``), else ``results/`` in the checkout. A report into another --out-dir measures afresh there."""
    env = os.environ.get(RESULTS_DIR_ENV)
    return Path(env) if env else repo_root() / "results"
