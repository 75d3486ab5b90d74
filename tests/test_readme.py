"""The README's images and file links resolve inside the repository, to files git tracks (a fresh clone shows them)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _tracked() -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return set(out.splitlines())


def test_readme_images_are_tracked_files():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)
    assert images, "the README shows no figure"
    tracked = _tracked()
    missing = [p for p in images if p not in tracked]
    assert not missing, f"README images not tracked by git (a fresh clone would show broken images): {missing}"
