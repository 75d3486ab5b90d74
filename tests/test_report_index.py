"""The report's front page (reports/index.html) from hand-made executed notebooks: no kernel, fast.

What it protects: each notebook's entry carries its title, what it answers, a headline the notebook itself computed
and printed, its key figure (a link that resolves from the page's folder) and, when it failed, the failing cell;
the top says which weights, model, device and machine produced the report; every piece of notebook text is
escaped and the page is well-formed HTML that loads nothing from the network.
"""

import base64
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat as nbf
import pytest

from vaestudy.report import index as I
from vaestudy.report.html import _export_figures

REPO = Path(__file__).resolve().parents[1]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
ENV = {"device": "cpu", "device_name": "Test CPU <9000> & Co", "platform": "Linux-test", "cpu_count": 2,
       "threads": 2, "python": "3.11.7", "torch": "2.13.0+cpu", "diffusers": "0.42.1", "numpy": "2.4.6",
       "notebooks at once": 1}


def _md_out(text):
    return nbf.v4.new_output("display_data", data={"text/markdown": text, "text/plain": "<IPython.core.display.Markdown object>"})


def _png_out():
    return nbf.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure size 640x480 with 1 Axes>"})


def _nb(cells):
    """An executed-looking notebook: "md:..." a Markdown cell, else (source, outputs) or (source, outputs, tags)."""
    nb = nbf.v4.new_notebook()
    for c in cells:
        if isinstance(c, str):
            nb.cells.append(nbf.v4.new_markdown_cell(c[3:]))
            continue
        source, outputs, *tags = c
        cell = nbf.v4.new_code_cell(source, outputs=outputs)
        if tags:
            cell.metadata["tags"] = list(tags[0])
        nb.cells.append(cell)
    return nb


GOOD = [
    ("md:# 01 · Seams & tiles <= 2 px <em>wide</em>\n\nA lead paragraph.\n\n**What you will learn**\n"
     "- where the error sits, and *why*;\n- how `TilePlan(overlap=2)` changes $b \\times s$;\n- a third thing;\n"
     "- a fourth thing.\n\nEverything below is computed."),
    ("MODEL = 'wan2.1'\nWEIGHTS = 'embedded'\nDEVICE = 'cpu'", [], ["parameters"]),
    "md:## 1 · Where the error sits",
    ("plt.plot(x); plt.show()", [_png_out()]),
    ("print('a')", [nbf.v4.new_output("stream", name="stdout", text="**not a headline**\n")]),
    "md:## What we measured",
    ("display(Markdown(lines))", [_md_out(
        "*embedded weights; bikes, 17 frames.*\n\n"
        "- **Seams cost 3.2 dB** at overlap 0 <script>alert(1)</script> & less with $R$ = 0.88.\n"
        "- A second bullet.")]),
    "md:## Gotchas",
    ("plt.imshow(e); plt.show()", [_png_out()]),
]
BAD = [
    "md:# 02 · Flicker\n\nThis notebook measures jumps at chunk boundaries; it fails here.",
    ("x = 1", [_md_out("**An early finding** that the failed run must not stand for.")]),
    ("import torch\nraise RuntimeError('boom <b>')", [nbf.v4.new_output(
        "error", ename="RuntimeError", evalue="boom <b>", traceback=["\x1b[0;31mRuntimeError\x1b[0m: boom <b>"])]),
]


def _build(tmp_path, good=GOOD, bad=BAD):
    """build/, figures/ and reports/ as build_report leaves them, for one good and one failed notebook."""
    build, figures, reports = (tmp_path / d for d in ("build", "figures", "reports"))
    for d in (build, figures, reports):
        d.mkdir()
    rows = []
    for stem, cells, status in (("01_good", good, "ok"),
                                ("02_bad", bad, "FAILED in cell [3]: RuntimeError: boom <b>")):
        nb = _nb(cells)
        for i, c in enumerate(nb.cells):
            if c.cell_type == "code":
                c.execution_count = i + 1
        nbf.write(nb, build / f"{stem}.ipynb")
        rows.append((stem, status, 1.5, _export_figures(nb, stem, figures),
                     {"MODEL": "wan2.1", "WEIGHTS": "embedded" if stem == "01_good" else "tiny", "FAST": True}))
    return build, figures, reports, rows


class _WellFormed(HTMLParser):
    """Every element closed in order (void elements excepted), and no block element inside a <p>."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input", "source", "wbr"})
    BLOCK = frozenset({"p", "ul", "ol", "pre", "div", "table", "figure", "section", "article", "h1", "h2", "h3", "dl"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        if tag in self.BLOCK and "p" in self.stack:
            self.errors.append(f"<{tag}> inside <p>")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if "script" not in self.stack and "style" not in self.stack:
            self.text.append(data)


def _parse(page: str) -> _WellFormed:
    p = _WellFormed()
    p.feed(page)
    p.close()
    assert not p.errors and not p.stack, (p.errors, p.stack)
    return p


def _article(page: str, stem: str) -> str:
    return re.search(rf"<article class='nb \w+' id='nb-{stem}'>.*?</article>", page, re.DOTALL).group(0)


def test_front_page_of_a_good_and_a_failed_notebook(tmp_path):
    build, figures, reports, rows = _build(tmp_path)
    I._write_index(reports / "index.html", rows, ENV, {"FAST": True}, 12.0, build=build, figures=figures)
    page = (reports / "index.html").read_text(encoding="utf-8")
    text = html.unescape("".join(_parse(page).text))
    good, bad = _article(page, "01_good"), _article(page, "02_bad")

    # title: the first heading, escaped (inline HTML markup dropped, as the notebook's page shows it), linked
    assert "<a href='01_good.html'>01 · Seams &amp; tiles &lt;= 2 px wide</a>" in good
    # what it answers: the "What you will learn" items, Markdown rendered, three shown and the rest counted
    assert "where the error sits, and <em>why</em>" in good
    assert "<code>TilePlan(overlap=2)</code> changes <var>b × s</var>" in good
    assert "a fourth thing" not in good and "and 1 more on the page" in good
    # headline: the first bullet under "What we measured" (not the italic caption, not an earlier print), escaped
    assert "<strong>Seams cost 3.2 dB</strong> at overlap 0 alert(1) &amp; less with <var>R</var> = 0.88." in good
    assert "<script>alert" not in page and "A second bullet" not in good and "not a headline" not in page
    # key figure: the first figure the notebook drew, by a path that resolves from the page's folder
    src = re.search(r"<img src='([^']+)'", good).group(1)
    assert src == "../figures/01_good_01.png" and (reports / src).resolve() == (figures / "01_good_01.png").resolve()
    assert f"<a href='{src}'>" in good
    assert "<span class='status ok'>ok</span> &middot; 1.5 s" in good

    # the failed notebook keeps its entry: status, the failing cell's number and source, no headline from it
    assert "<span class='status failed'>FAILED</span>" in bad
    assert "FAILED in cell [3]: RuntimeError: boom &lt;b&gt;" in bad
    assert "The failing cell, In [3]" in bad and "raise RuntimeError(&#x27;boom &lt;b&gt;&#x27;)" in bad
    assert bad.count("RuntimeError: boom &lt;b&gt;") == 1  # the status names the error once
    assert "An early finding" not in bad and "did not run to its results" in bad
    assert "\x1b[" not in page  # the traceback's colours are not copied
    assert "<img" not in bad  # it drew no figure

    # provenance at the top: weights and model per notebook, device and the machine's CPU model, escaped
    top = page[:page.index('id="front-page"')]
    assert "<strong>embedded</strong> (01) · <strong>tiny</strong> (02)" in top
    assert "<strong>wan2.1</strong> (every notebook that takes it)" in top
    assert "<th>device</th><td>the report ran on <strong>cpu</strong>: <strong>Test CPU &lt;9000&gt; &amp; Co" in top
    assert "Test CPU <9000>" not in page
    assert "torch 2.13.0+cpu" in top and "diffusers 0.42.1" in top and "2 CPU cores" in top
    assert "1 of 2 notebook(s) ran to the end" in text

    # the run table stays: one row per notebook in the shape other tests and scripts read
    assert re.search(r"<tr><td><a href='01_good.html'>01_good</a></td><td>ok</td><td>1\.5</td><td>2</td>", page)
    # offline: nothing but the page's own relative links
    urls = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)""", page)
    assert urls and not [u for u in urls if re.match(r"(?:[a-z]+:)?//", u, re.IGNORECASE)], urls


def test_summary_json_carries_title_headline_and_key_figure(tmp_path):
    build, figures, reports, rows = _build(tmp_path)
    I._write_summary(reports / "summary.json", rows, ENV, {"FAST": True}, 12.0, build=build, figures=figures)
    by = {n["stem"]: n for n in json.loads((reports / "summary.json").read_text())["notebooks"]}
    assert by["01_good"]["title"] == "01 · Seams & tiles <= 2 px wide"
    assert by["01_good"]["headline"].startswith("Seams cost 3.2 dB at overlap 0")
    assert by["01_good"]["key_figure"] == "../figures/01_good_01.png"
    assert by["02_bad"]["headline"] is None and by["02_bad"]["status"].startswith("FAILED")


def test_an_index_without_executed_notebooks_still_lists_every_row(tmp_path):
    """A notebook whose executed copy is missing (papermill never wrote it) keeps a row named by its file."""
    path = tmp_path / "index.html"
    I._write_index(path, [("03_gone", "FAILED in a cell: OSError: no kernel", 0.5, 0, {})], ENV, {"FAST": True}, 1.0)
    page = path.read_text(encoding="utf-8")
    _parse(page)
    assert "<a href='03_gone.html'>03_gone</a>" in page and "OSError: no kernel" in page


def test_a_tagged_headline_and_key_figure_win(tmp_path):
    good = GOOD + [("show(result)", [_png_out(), _md_out("The tagged result: **4.2x**.")], ["headline", "key-figure"])]
    nb = _nb(good)
    assert I.plain(I.headline(nb).spans) == "The tagged result: 4.2x."
    assert I.key_figure(nb, "01_good") == ("01_good_03.png", True)
    assert I.key_figure(_nb(GOOD), "01_good") == ("01_good_01.png", False)
    assert I.key_figure(_nb(BAD), "02_bad") is None


def test_headline_sources_in_order_of_preference():
    heading_in_output = _nb(["md:# T", ("x", [_md_out("## What we measured\n\n*caption*\n\n- first result\n")])])
    assert I.plain(I.headline(heading_in_output).spans) == "first result"
    # a section ends at the next heading of its level: a later output is not its result
    closed = _nb(["md:# T", "md:## What we measured", "md:## Gotchas", ("x", [_md_out("- a gotcha")])])
    assert I.headline(closed) is None
    # no "What we measured": the first Markdown output that opens with a bold statement
    bold = _nb(["md:# T", ("x", [_md_out("Plain context.")]), ("y", [_md_out("**28 claims: 15 agree.** Sources: a")])])
    h = I.headline(bold)
    assert I.plain(h.spans) == "28 claims: 15 agree. Sources: a" and h.source == "its first stated finding"


def test_what_it_answers_reads_the_opening():
    inline = _nb([("md:# 06 · Pipelines\n\nLead.\n\n**What you will learn:** how much overlap hides; how queues "
                   "drop frames; why a small halo is not exact.\n\nMore.")])
    assert [I.plain(a) for a in I.what_it_answers(inline)] == [
        "how much overlap hides", "how queues drop frames", "why a small halo is not exact"]
    no_marker = _nb(["md:# 02 · Tiling\n\nA decoder that does not fit is run **tile by tile**.\n\n## 1 · Next"])
    assert [I.plain(a) for a in I.what_it_answers(no_marker)] == ["A decoder that does not fit is run tile by tile."]
    later = _nb(["md:# T", "md:## 1 · Section\n\n**What you will learn**\n- not the opening"])
    assert I.what_it_answers(later) == []


def test_shorten_cuts_at_a_sentence_or_a_word_never_inside_code_or_math():
    spans = I.parse_inline("**A whole first sentence that is long enough.** Then more words follow here and here.")
    assert I.plain(I.shorten(spans, 60)) == "A whole first sentence that is long enough."
    words = I.parse_inline("one two three four five six seven eight nine ten eleven twelve")
    assert I.plain(I.shorten(words, 20)) == "one two three four…"
    code = I.parse_inline("short `a_very_long_code_span_that_must_not_be_cut` tail")
    assert I.plain(I.shorten(code, 30)) == "short…"
    assert I.shorten(words, 500) == words


@pytest.mark.parametrize("tex, text", [("s=8", "s=8"), (r"R = \frac{8cp}{b s^2 t}", "R = 8cp/b s^2 t"),
                                       (r"S_\text{latent}", "S_latent"), (r"2\times\sigma", "2×σ")])
def test_inline_math_becomes_plain_text(tex, text):
    assert I.tex_to_text(tex) == text


def test_every_notebook_opens_with_a_title_and_what_it_answers():
    """The front page reads these from each notebook's opening cell (the house convention)."""
    paths = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert paths
    for p in paths:
        nb = nbf.read(p, as_version=4)
        title = I.plain(I.notebook_title(nb))
        assert title.startswith(p.name[:2]), (p.name, title)
        assert I.what_it_answers(nb), f"{p.name}: no 'What you will learn' lines or first paragraph"


def test_figure_numbering_matches_the_exported_files(tmp_path):
    nb = _nb(GOOD)
    assert _export_figures(nb, "01_good", tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01_good_01.png", "01_good_02.png"]
    assert (tmp_path / "01_good_01.png").read_bytes() == base64.b64decode(PNG)
