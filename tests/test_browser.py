"""The report of the real notebooks, opened in headless Chromium (Playwright) as a reader would open it.

The pages come from the session's one execution of every notebook (the ``suite`` fixture of tests/conftest.py,
shared with test_notebooks.py). index.html and every notebook page are opened from file:// URLs, offline: each
page loads with no console error, no page error and no request off file://; every figure has a size; tables
render; the index links to every notebook page. What a reader sees is checked too: MathJax (the report's local
copy) typesets every formula, so no raw TeX ($$...$$, $b$, a TeX command) is left in the visible text, and no widget
repr (interactive(children=..., IntSlider(...) stands in for a widget. Without /usr/bin/chromium the module is
skipped, unless VAESTUDY_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

pytestmark = pytest.mark.slow  # needs the executed notebooks; part of `make test`, not of the fast tier

REPO = Path(__file__).resolve().parents[1]
STEMS = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = os.environ.get("VAESTUDY_CHROMIUM", "/usr/bin/chromium")  # Debian's; see `make browser`
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL = "apt-get update && apt-get install -y --no-install-recommends chromium  (as root; or `make browser`)"
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
# a markdown table's delimiter row: | --- | :---: | (two columns at least)
MD_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$", re.M)
# TeX that MathJax did not typeset: display math, an inline $...$ (a non-space next to each dollar: "$b$"), or a TeX
# command. Matched in the visible text of prose and outputs, less code (<code>, <pre>), where a dollar is literal.
RAW_TEX = re.compile(r"\$\$|\$[^\s$](?:[^$\n]*[^\s$])?\$|\\(?:frac|text|mathrm|cdot|times|sum|approx)\b")
WIDGET_REPRS = ("interactive(children=", "IntSlider(", "FloatSlider(", "Dropdown(")
MATHJAX_TIMEOUT_MS = 60_000

PAGE_FACTS = """() => {
  const size = el => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  const RENDERED = '.jp-RenderedMarkdown, .jp-RenderedHTMLCommon, .jp-OutputArea-output';
  return {
    ready: document.readyState,
    title: document.title,
    text: document.body ? document.body.innerText.length : 0,
    imgs: [...document.images].map(i => ({src: i.getAttribute('src').slice(0, 30), complete: i.complete,
                                          natural: [i.naturalWidth, i.naturalHeight], rendered: size(i)})),
    svgs: [...document.querySelectorAll('.jp-OutputArea-output svg, .jp-RenderedMarkdown svg')]
            .filter(s => !s.parentElement.closest('svg')).map(s => ({rendered: size(s)})),
    tables: [...document.querySelectorAll('table')].map(t => ({rows: t.rows.length, rendered: size(t)})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    mathjax: document.documentElement.dataset.mathjax || null,
    prose: [...document.querySelectorAll(RENDERED)].filter(el => !el.parentElement.closest(RENDERED))
            .map(el => { const parts = [], walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
                         for (let n = walk.nextNode(); n; n = walk.nextNode()) {
                           const p = n.parentElement;
                           if (p.closest('code, pre, script, style, .MathJax, .MathJax_Display, .MJX_Assistive_MathML')
                               || !p.checkVisibility()) continue;
                           parts.push(n.textContent); }
                         return parts.join(''); }),
    outputs: [...document.querySelectorAll('.jp-OutputArea-output')].map(el => el.innerText),
  };
}"""


def _require_browser():
    """Skip (or, with VAESTUDY_REQUIRE_BROWSER=1, fail) when Chromium or Playwright is missing."""
    problem = None
    if not Path(CHROMIUM).exists():
        problem = f"{CHROMIUM} not found; install it with: {INSTALL}"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is missing; install it with: pip install -e '.[test]'"
    if problem:
        if os.environ.get("VAESTUDY_REQUIRE_BROWSER") == "1":
            pytest.fail(f"VAESTUDY_REQUIRE_BROWSER=1 but {problem}", pytrace=False)
        pytest.skip(problem)


@pytest.fixture(scope="module")
def report(suite):
    """The pages of the session's one execution of every notebook (tests/conftest.py ``suite``)."""
    _require_browser()
    out, executed, summary = suite
    failed = [f"{r['stem']}: {r['status']}" for r in summary["notebooks"] if not r["status"].startswith("ok")]
    assert not failed, f"some notebooks failed: {failed}"
    return out, executed


@pytest.fixture(scope="module")
def browser(report):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _open(browser, url: str, screenshot: Path | None = None, full_page: bool = False) -> dict:
    """Load ``url`` in a fresh offline context; its DOM facts plus what went wrong on the way."""
    ctx = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    console, page_errors, remote, failed = [], [], [], []
    page.on("console", lambda m: console.append(f"{m.text} @ {m.location}") if m.type == "error" else None)
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith(LOCAL_SCHEMES) else remote.append(r.url))
    page.on("requestfailed", lambda r: failed.append(f"{r.url[:80]}: {r.failure}"))
    try:
        page.goto(url, wait_until="load", timeout=60_000)
        page.wait_for_load_state("networkidle", timeout=30_000)
        if page.evaluate("!!window.MathJax"):  # a notebook page: the local MathJax says when it has typeset the page
            page.wait_for_function("document.documentElement.dataset.mathjax === 'done'", timeout=MATHJAX_TIMEOUT_MS)
        facts = page.evaluate(PAGE_FACTS)
        if screenshot:
            page.screenshot(path=str(screenshot), full_page=full_page)
    finally:
        ctx.close()
    return {**facts, "console_errors": console, "page_errors": page_errors, "remote": remote, "failed": failed}


def _assert_clean(facts: dict, name: str) -> None:
    assert facts["ready"] == "complete" and facts["text"] > 0, f"{name} did not load: {facts['ready']}"
    assert not facts["console_errors"], f"{name}: console errors {facts['console_errors']}"
    assert not facts["page_errors"], f"{name}: page errors {facts['page_errors']}"
    assert not facts["remote"], f"{name} requested non-file URLs: {facts['remote']}"
    assert not facts["failed"], f"{name}: failed requests {facts['failed']}"
    for kind in ("imgs", "svgs"):
        for f in facts[kind]:
            w, h = f["rendered"]
            assert w > 0 and h > 0, f"{name}: a figure ({kind}) renders at {w}x{h}: {f}"
            if kind == "imgs":
                assert f["complete"] and min(f["natural"]) > 0, f"{name}: an image did not decode: {f}"
    for t in facts["tables"]:
        assert t["rows"] > 0 and min(t["rendered"]) > 0, f"{name}: an empty or invisible table: {t}"


def _assert_reads_well(facts: dict, name: str) -> None:
    """Math typeset by the local MathJax, no TeX source and no widget repr in what a reader sees."""
    assert facts["mathjax"] == "done", f"{name}: MathJax did not typeset the page (data-mathjax={facts['mathjax']!r})"
    tex = sorted({m.group(0) for text in facts["prose"] for m in RAW_TEX.finditer(text)})
    assert not tex, f"{name}: raw TeX visible, not typeset: {tex[:8]}"
    reprs = sorted({r for text in facts["outputs"] for r in WIDGET_REPRS if r in text})
    assert not reprs, f"{name}: widget reprs visible instead of a note: {reprs}"


def _expected(nb) -> tuple[int, int]:
    """(figure outputs, tables) an executed notebook should show on its page."""
    figures = tables = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            tables += len(MD_TABLE_RULE.findall(cell.source))
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            figures += "image/png" in data or "image/svg+xml" in data
            if "text/html" in data:
                tables += "".join(data["text/html"]).count("<table")
            elif "text/markdown" in data:
                tables += len(MD_TABLE_RULE.findall("".join(data["text/markdown"])))
    return figures, tables


def test_index_page(report, browser):
    out, _ = report
    shot = out / "report_index.png"
    index = out / "reports" / "index.html"
    facts = _open(browser, index.as_uri(), screenshot=shot, full_page=True)
    _assert_clean(facts, "index.html")
    if os.environ.get("VAESTUDY_SCREENSHOT_DIR"):
        dest = Path(os.environ["VAESTUDY_SCREENSHOT_DIR"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest / shot.name)
    assert shot.stat().st_size > 0
    linked = {Path(url2pathname(urlparse(u).path)) for u in facts["links"] if u.startswith("file:")}
    missing = {f"{s}.html" for s in STEMS} - {p.name for p in linked}
    assert not missing, f"the index does not link to {sorted(missing)}"
    assert all(p.exists() for p in linked), f"dead links on the index: {[p for p in linked if not p.exists()]}"
    assert len(facts["tables"]) >= 2  # notebooks and environment
    text = index.read_text(encoding="utf-8")
    assert re.search(r"id=\"total-seconds\">\d+ s<", text)
    for stem in STEMS:  # one row per notebook: ok, and the weights it ran with
        row = re.search(rf"<tr><td><a href='{stem}.html'>.*?</tr>", text).group(0)
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td>(.*?)</td>", row)]
        assert cells[1].startswith("ok") and cells[5] not in ("", "&mdash;"), f"index row of {stem}: {cells}"


@pytest.mark.parametrize("stem", STEMS)
def test_notebook_page(report, browser, stem):
    out, executed = report
    page = out / "reports" / f"{stem}.html"
    assert page.exists(), f"{page.name} was not written"
    facts = _open(browser, page.as_uri(), screenshot=out / f"report_{stem}.png")
    _assert_clean(facts, page.name)
    _assert_reads_well(facts, page.name)
    want_figures, want_tables = _expected(executed[stem])
    shown = len(facts["imgs"]) + len(facts["svgs"])
    assert shown >= want_figures, f"{page.name}: {shown} figures on the page, {want_figures} in the notebook"
    if want_figures:
        assert shown >= 1
    assert len(facts["tables"]) >= want_tables, \
        f"{page.name}: {len(facts['tables'])} tables on the page, {want_tables} in the notebook"
    if want_tables:
        assert len(facts["tables"]) >= 1
