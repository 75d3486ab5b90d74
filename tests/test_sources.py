"""Every source the study cites resolves to a page in ``sources/``, and those pages summarise without copying.

The seed notes (``seeds/000_….txt`` … ``seeds/004_….txt``) and ``FINDINGS.md`` live in the project's shared folder,
outside the repository; ``sources/`` holds one page per source in the project's own words. These tests protect:

* notebooks 00–06 cite sources by links that resolve to files under ``sources/`` (from ``notebooks/``, and so from
  ``reports/``, which sits at the same depth);
* no notebook 00–06 names ``FINDINGS.md`` or a seed note's ``.txt`` file where the reader cannot follow it, i.e. on a
  line without a reference into ``sources/``;
* each code of the claims table's ``[sources]`` (000–004, anchors) has a page that names the original file;
* every page is non-empty and names its original;
* no run of 12 words of an original sentence appears in ``sources/`` (needs ``../shared``; skipped without it).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "sources"
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CLAIMS_TABLE = REPO / "src" / "vaestudy" / "guide" / "claims.toml"
SHARED = Path(os.environ.get("VAESTUDY_SHARED", REPO.parent / "shared"))

SEED_NAME = re.compile(r"\b(00[0-4])_[0-9a-f]{16}\.txt\b")  # a seed note's real file name
# what the notebooks used to write for an original: FINDINGS.md, `000_*.txt`, `000_…`, or the real file name
DANGLING = re.compile(r"FINDINGS\.md|\b00[0-4]_(?:\*|…|[0-9a-f]{16})(?:\.txt)?")
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
SOURCES_PATH = re.compile(r"(?<![\w/.-])((?:\.\./)?sources/[\w.-]+\.md)\b")
RUN = 12  # words: a run this long taken from an original counts as copied
MIN_WORDS = 6  # a run with fewer alphabetic words is a row of figures (numbers may be restated), not prose

# Mentions in notebooks 00–06 that others own and have not yet rewritten: (notebook stem, text on the line, why).
# Each is a code comment, or a line of a `# NBVAL_CHECK_OUTPUT` cell whose reference in notebooks/nbval_reference/ is
# keyed by the cell's source. Remove an entry once its line links to sources/ (the test fails on stale entries).
PENDING: tuple[tuple[str, str, str], ...] = ()  # every citation now links sources/


def _notebook_lines(path: Path):
    """(cell index, line) for every line of every cell's source and of its stored text outputs."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        texts = ["".join(cell["source"])]
        for out in cell.get("outputs", []):
            texts.append("".join(out.get("text", "")))
            for value in out.get("data", {}).values():
                if isinstance(value, (str, list)):
                    texts.append("".join(value))
        for text in texts:
            yield from ((i, line) for line in text.splitlines())


def test_notebooks_are_found():
    assert [p.name[:2] for p in NOTEBOOKS] == ["00", "01", "02", "03", "04", "05", "06", "07", "08", "09"], NOTEBOOKS


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_citations_resolve_to_sources(notebook):
    """Every link or path into sources/ in the notebook names an existing file inside sources/."""
    broken = []
    for i, line in _notebook_lines(notebook):
        targets = [t for t in MD_LINK.findall(line) if "sources/" in t]
        targets += [t for t in SOURCES_PATH.findall(line) if f"]({t}" not in line]
        for target in targets:
            rel = target.split("#", 1)[0]
            base = notebook.parent if rel.startswith("../") else REPO  # plain paths are relative to the repository
            resolved = (base / rel).resolve()
            if not resolved.is_file() or SOURCES.resolve() not in resolved.parents:
                broken.append(f"cell {i}: {target}")
    assert not broken, f"{notebook.name}: citations that do not resolve to a file under sources/: {broken}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_names_no_original_without_a_link(notebook):
    """FINDINGS.md and the seed notes' .txt files are outside the repository: a line naming one must link sources/."""
    pending = [text for stem, text, _ in PENDING if stem == notebook.stem]
    dangling, used = [], set()
    for i, line in _notebook_lines(notebook):
        if not DANGLING.search(line) or "sources/" in line:
            continue
        hit = next((text for text in pending if text in line), None)
        if hit is None:
            dangling.append(f"cell {i}: {line.strip()[:160]}")
        else:
            used.add(hit)
    assert not dangling, (f"{notebook.name} cites files that are not in the repository; link the page in sources/ "
                          f"instead (e.g. [000: topic page](../sources/000_topic-page.md)): {dangling}")
    stale = [text for text in pending if text not in used]
    assert not stale, f"{notebook.name}: PENDING entries now fixed; remove them from tests/test_sources.py: {stale}"


def test_claims_table_sources_have_pages():
    """Each code of the claims table's [sources] names its page in sources/, and that page names the file the code
    stands for (the notebooks cite the page, which names the original)."""
    table = tomllib.loads(CLAIMS_TABLE.read_text(encoding="utf-8"))["sources"]
    problems = []
    for code, src in table.items():
        page = SOURCES / src["page"]
        if not page.is_file():
            problems.append(f"{code}: page={src['page']!r} is not in sources/")
        elif src["file"] not in page.read_text(encoding="utf-8"):
            problems.append(f"{code}: {page.name} does not name its original {src['file']}")
    assert not problems, problems


def test_each_code_has_exactly_one_page():
    codes = sorted(p.name[:3] for p in SOURCES.glob("00[0-9]_*.md"))
    assert codes == ["000", "001", "002", "003", "004"], codes
    assert (SOURCES / "findings.md").is_file() and (SOURCES / "README.md").is_file()


@pytest.mark.parametrize("page", sorted(SOURCES.glob("*.md")), ids=lambda p: p.name)
def test_page_is_non_empty_and_names_its_origin(page):
    text = page.read_text(encoding="utf-8")
    assert len(text.split()) > 100, f"{page.name} is (nearly) empty"
    if page.name == "README.md":
        for other in SOURCES.glob("*.md"):
            if other.name != "README.md":
                assert f"]({other.name})" in text, f"README.md does not link {other.name}"
        assert "FINDINGS.md" in text and len(set(SEED_NAME.findall(text))) == 5, "README.md must name every original"
    elif page.name == "findings.md":
        assert "**Origin:** `FINDINGS.md`" in text, "findings.md must name FINDINGS.md as its origin"
    else:
        named = SEED_NAME.findall(text.split("\n\n", 2)[1])  # the origin paragraph, right after the title
        assert named and named[0] == page.name[:3], f"{page.name} must name its seed note {page.name[:3]}_….txt"
    for target in MD_LINK.findall(text):  # its own links resolve too
        if "://" not in target:
            assert (page.parent / target.split("#", 1)[0]).resolve().exists(), f"{page.name}: broken link {target}"


def _words(text: str) -> list[str]:
    """Lower-case words; a decimal number (1.83, 0.57) is one word."""
    return re.findall(r"[a-z0-9]+(?:\.[0-9]+)*", text.lower().replace("’", "").replace("'", ""))


def _originals() -> list[Path]:
    return sorted((SHARED / "seeds").glob("*.txt")) + [SHARED / "FINDINGS.md"]


@pytest.mark.skipif(not (SHARED / "FINDINGS.md").is_file() or not list((SHARED / "seeds").glob("*.txt")),
                    reason=f"the originals are outside the repository and absent here ({SHARED}), e.g. in CI")
def test_pages_name_existing_originals():
    for page in sorted(SOURCES.glob("*.md")):
        for name in {m.group(0) for m in SEED_NAME.finditer(page.read_text(encoding="utf-8"))}:
            assert (SHARED / "seeds" / name).is_file(), f"{page.name} names {name}, which is not in {SHARED / 'seeds'}"


@pytest.mark.skipif(not (SHARED / "FINDINGS.md").is_file() or not list((SHARED / "seeds").glob("*.txt")),
                    reason=f"the originals are outside the repository and absent here ({SHARED}), e.g. in CI")
def test_no_sentence_of_an_original_is_copied():
    """No run of 12 words of an original's sentence appears in sources/ (punctuation and case ignored; runs that are
    mostly figures are allowed, since numbers may be restated)."""
    ours: set[tuple[str, ...]] = set()
    for page in SOURCES.glob("*.md"):
        w = _words(page.read_text(encoding="utf-8"))
        ours.update(tuple(w[i:i + RUN]) for i in range(len(w) - RUN + 1))
    copied = []
    for original in _originals():
        text = original.read_text(encoding="utf-8")
        for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
            w = _words(sentence)
            for i in range(len(w) - RUN + 1):
                run = tuple(w[i:i + RUN])
                if sum(x.isalpha() for x in run) >= MIN_WORDS and run in ours:
                    copied.append(f"{original.name}: {' '.join(run)}")
                    break
    assert not copied, f"sources/ copies {len(copied)} sentence(s) of the originals; paraphrase them: {copied}"
