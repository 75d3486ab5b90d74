"""The report's front page (reports/index.html) and its machine-readable twin (reports/summary.json).

Each notebook's entry is read from its executed copy in build/: its title (the first Markdown heading), what it
answers (its opening "What you will learn" lines, else its first paragraph), a headline result the notebook computed
and printed in this run (``headline``), its key figure (the file ``_export_figures`` wrote into figures/), status and
seconds; a failed notebook names the cell it failed in (and shows no headline). A notebook chooses its own headline
or key figure with the cell tags ``headline`` and ``key-figure``. The top of the page says which weights, model,
device and machine produced the report. Notebook text is Markdown: the page shows a small subset (bold, italics,
code, inline math as plain text), every character of it escaped; nothing is loaded from the network.
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from collections import namedtuple
from dataclasses import dataclass, field
from itertools import takewhile
from pathlib import Path
from urllib.parse import quote

import nbformat

from vaestudy.bench.environment import cpu_model_name
from vaestudy.report.execute import PARAMETER_NAMES
from vaestudy.report.html import figure_file, figure_outputs

# cell tags a notebook may set to choose its entry instead of the defaults below
HEADLINE_TAG = "headline"      # the first Markdown/text output of this cell is the headline
KEY_FIGURE_TAG = "key-figure"  # the first figure of this cell is the key figure (default: the notebook's first)
MEASURED_HEADING = re.compile(r"^\s*what we measured\b", re.IGNORECASE)
LEARN_MARKER = re.compile(r"what you will learn", re.IGNORECASE)
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"  # the red banner papermill puts at the top of a failed notebook

# how much of a notebook's own text the front page shows (visible characters)
HEADLINE_CHARS = 320
ANSWER_CHARS = 150
ANSWER_ITEMS = 3
FAILED_CELL_LINES = 12
MIN_SENTENCE = 40  # a shortened text ends after a whole sentence if one this long fits


# --- inline Markdown: a safe subset, shortened by visible characters ---
@dataclass(frozen=True)
class Span:
    """A run of inline text: ``kind`` text, code or math (math holds TeX), with bold/italic flags."""

    text: str
    kind: str = "text"
    strong: bool = False
    em: bool = False

    @property
    def visible(self) -> str:
        return tex_to_text(self.text) if self.kind == "math" else self.text


_INLINE = re.compile(
    r"(?P<tick>`+)(?P<code>.+?)(?P=tick)"
    r"|\$\$(?P<dmath>.+?)\$\$"
    r"|(?<![\\$])\$(?P<math>[^\s$](?:[^$\n]*?[^\s$\\])?)\$"
    r"|\*\*(?P<strong>.+?)\*\*"
    r"|(?<![\w*])\*(?P<em>[^*\s](?:[^*]*?[^*\s])?)\*(?![\w*])"
    r"|!?\[(?P<link>[^\]]*)\]\([^)]*\)"
    r"|</?[A-Za-z][^>\n]*>")  # inline HTML in a Markdown line: dropped (the page shows text, not the notebook's markup)

_TEX_SYMBOLS = dict(times="×", cdot="·", approx="≈", le="≤", leq="≤", ge="≥", geq="≥", neq="≠", pm="±", to="→",
                    rightarrow="→", infty="∞", sim="~", ldots="…", dots="…", cdots="…", parallel="∥", alpha="α",
                    beta="β", gamma="γ", delta="δ", Delta="Δ", epsilon="ε", mu="μ", pi="π", rho="ρ",
                    sigma="σ", Sigma="Σ", sum="Σ", tau="τ", theta="θ", omega="ω", **{"lambda": "λ"})


def tex_to_text(tex: str) -> str:
    """Inline TeX as plain text for a line of the index (``\\frac{a}{b}`` -> a/b, ``\\times`` -> ×)."""
    s = re.sub(r"\\(?:text|mathrm|mathbf|mathit|operatorname|textrm|textbf|mbox)\s*\{([^{}]*)\}", r"\1", tex)
    s = re.sub(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"\1/\2", s)
    s = re.sub(r"\\(?:left|right|big|Big)\b", "", s)
    s = re.sub(r"\\[,;:! ]", " ", s)
    s = re.sub(r"\\([A-Za-z]+|[%${}_#&])", lambda m: _TEX_SYMBOLS.get(m.group(1), m.group(1)), s)
    s = s.replace("{", "").replace("}", "")
    return re.sub(r"\s+", " ", s).strip()


def parse_inline(md: str, strong: bool = False, em: bool = False) -> list[Span]:
    """The spans of one line of Markdown (``**`` and ``*`` emphasis nest; code, math and link text are kept; other
    markup, inline HTML included, is dropped as the notebook's page would not show it as text)."""
    spans: list[Span] = []
    pos = 0
    for m in _INLINE.finditer(md):
        if m.start() > pos:
            spans.append(Span(md[pos:m.start()], strong=strong, em=em))
        g = m.groupdict()
        if g["code"] is not None:
            spans.append(Span(g["code"].strip(), "code", strong, em))
        elif g["dmath"] is not None or g["math"] is not None:
            spans.append(Span(g["dmath"] if g["dmath"] is not None else g["math"], "math", strong, em))
        elif g["strong"] is not None:
            spans += parse_inline(g["strong"], True, em)
        elif g["em"] is not None:
            spans += parse_inline(g["em"], strong, True)
        elif g["link"] is not None:
            spans += parse_inline(g["link"], strong, em)
        pos = m.end()
    if pos < len(md):
        spans.append(Span(md[pos:], strong=strong, em=em))
    return [s for s in spans if s.text]


def plain(spans: list[Span]) -> str:
    """What a reader sees of ``spans``, as one string."""
    return "".join(s.visible for s in spans)


def shorten(spans: list[Span], limit: int) -> list[Span]:
    """``spans`` cut to at most ``limit`` visible characters: after the last whole sentence that fits (at least
    ``MIN_SENTENCE`` characters), else at a word boundary with an ellipsis; code and math are never cut."""
    text = plain(spans)
    if len(text) <= limit:
        return spans
    starts = [sum(len(s.visible) for s in spans[:k]) for k in range(len(spans) + 1)]
    atomic = [(a, b) for s, a, b in zip(spans, starts, starts[1:]) if s.kind != "text"]  # code and math
    inside = lambda i: any(a < i < b for a, b in atomic)  # a cut at i would split a code or math span
    ends = [i + 1 for i in range(min(limit, len(text) - 1)) if text[i] == "." and text[i + 1] == " "
            and not inside(i + 1)]
    ends = [i for i in ends if i >= MIN_SENTENCE]
    if ends:
        cut, tail = ends[-1], ""
    else:
        spaces = [i for i in range(limit) if text[i] == " " and not inside(i)]
        cut, tail = (spaces[-1] if spaces else limit), "…"
    out = [s if b <= cut else Span(s.text[:cut - a].rstrip(" ,;:—-("), s.kind, s.strong, s.em)
           for s, a, b in zip(spans, starts, starts[1:]) if b <= cut or (a < cut and s.kind == "text")]
    return [s for s in out + [Span(tail)] if s.text]


def render(spans: list[Span]) -> str:
    """``spans`` as escaped HTML: <strong>, <em>, <code>, and inline math in <var> as plain text."""
    parts = []
    for s in spans:
        t = html.escape(s.visible)
        for tag, on in (("code", s.kind == "code"), ("var", s.kind == "math"), ("em", s.em), ("strong", s.strong)):
            t = f"<{tag}>{t}</{tag}>" if on else t
        parts.append(t)
    return "".join(parts)


# --- Markdown blocks: headings, list items, paragraphs ---
_ITEM = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def blocks(md: str) -> list[tuple[str, str]]:
    """The blocks of a Markdown text as (kind, text): kind heading1..heading6, item, para or other (a table or HTML
    line, display math); the lines of an item or paragraph are joined with spaces; fenced code is skipped."""
    out, joins, fence = [], False, None  # joins: the last block takes the next line (an item's or paragraph's)
    for line in md.splitlines():
        s = line.strip()
        if fence or s.startswith(("```", "~~~")):
            fence, joins = (None if fence and s.startswith(fence) else fence or s[:3]), False
            continue
        h, item = _HEADING.match(line), _ITEM.match(line)
        if not s or h or item or s.startswith(("|", "<", "$$")):
            if s:
                out.append([f"heading{len(h.group(1))}", h.group(2)] if h else
                           ["item", line[item.end():].strip()] if item else ["other", s])
            joins = bool(item)
        elif joins:
            out[-1][1] += " " + s
        else:
            out.append(["para", s])
            joins = True
    return [(k, t) for k, t in out]


def _heading_level(kind: str) -> int:
    return int(kind[7:]) if kind.startswith("heading") else 0


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else (source or "")


def _tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


# --- what the front page reads from an executed notebook ---
def notebook_title(nb, default: str = "") -> list[Span]:
    """The notebook's first Markdown heading (any level), as spans; ``default`` if it has none."""
    for cell in nb.cells:
        if cell.cell_type != "markdown" or PAPERMILL_ERROR_TAG in _tags(cell):
            continue
        for kind, text in blocks(_text(cell.source)):
            if kind.startswith("heading"):
                return parse_inline(text)
    return [Span(default)] if default else []


def what_it_answers(nb) -> list[list[Span]]:
    """What the notebook sets out to answer: the lines after its opening "What you will learn" (a list, or one
    paragraph split at semicolons), else its first paragraph; each as spans, unshortened."""
    opening: list[tuple[str, str]] = []
    for cell in nb.cells:  # the Markdown before the notebook's first section (level-2 heading or deeper)
        if cell.cell_type != "markdown" or PAPERMILL_ERROR_TAG in _tags(cell):
            continue
        bl = blocks(_text(cell.source))
        cut = next((i for i, (k, _) in enumerate(bl) if _heading_level(k) >= 2), None)
        opening += bl[:cut]
        if cut is not None:
            break
    for i, (kind, text) in enumerate(opening):
        m = LEARN_MARKER.search(text) if kind == "para" else None
        if not m:
            continue
        rest = re.sub(r"^\s*(?:here)?[\s:*_]*", "", text[m.end():])  # "**What you will learn here**", "...:**"
        items = re.split(r";\s+", rest) if rest else [t for _, t in takewhile(lambda b: b[0] == "item", opening[i + 1:])]
        if items:
            return [parse_inline(x.strip().rstrip(";.").strip()) for x in items]
    para = next((t for k, t in opening if k == "para"), None)
    return [parse_inline(para)] if para else []


def _output_text(out) -> str:
    """The Markdown an output shows: text/markdown of a display, else text/plain of a stream; '' for others."""
    if "text/markdown" in out.get("data", {}):
        return _text(out["data"]["text/markdown"])
    return _text(out.get("text", "")) if out.get("output_type") == "stream" and out.get("name") == "stdout" else ""


def _first_result(bl: list[tuple[str, str]]) -> str | None:
    """The first list item of some Markdown blocks, else their first paragraph."""
    return next((t for k, t in bl if k == "item"), None) or next((t for k, t in bl if k == "para"), None)


Headline = namedtuple("Headline", "spans source")  # source: where it came from, said on the page
FailedCell = namedtuple("FailedCell", "number source error")  # number: the execution count, shown as In [N]


def headline(nb) -> Headline | None:
    """One result the notebook computed and printed in this run, or None. In order of preference:
    the first Markdown or printed output of a cell tagged ``headline``; the first list item (else paragraph) of the
    first Markdown output under the notebook's "What we measured" heading (a Markdown cell, or a heading inside the
    output itself); the first Markdown output that opens with a bold statement (how the notebooks state a finding).
    """
    for cell in nb.cells:
        if cell.cell_type == "code" and HEADLINE_TAG in _tags(cell):
            for out in cell.get("outputs", []):
                found = _first_result(blocks(_output_text(out)))
                if found:
                    return Headline(parse_inline(found), f"the cell tagged “{HEADLINE_TAG}”")
    level = 0  # > 0: inside the "What we measured" section, opened by a heading of that level
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for kind, text in blocks(_text(cell.source)):
                lv = _heading_level(kind)
                if lv and MEASURED_HEADING.match(text):
                    level = lv
                elif lv and level and lv <= level:
                    level = 0
            continue
        for out in cell.get("outputs", []):
            bl = blocks(_output_text(out) if "text/markdown" in out.get("data", {}) else "")
            at = next((i for i, (k, t) in enumerate(bl) if _heading_level(k) and MEASURED_HEADING.match(t)), None)
            if at is not None:
                bl = bl[at + 1:]
            elif not level:
                continue
            found = _first_result(bl)
            if found:
                return Headline(parse_inline(found), "“What we measured”")
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if "text/markdown" in out.get("data", {}):
                for kind, text in blocks(_output_text(out)):
                    if kind in ("item", "para") and text.startswith("**"):
                        return Headline(parse_inline(text), "its first stated finding")
    return None


def key_figure(nb, stem: str) -> tuple[str, bool] | None:
    """(file name in figures/, tagged) of the notebook's key figure: the first figure of a cell tagged
    ``key-figure`` (tagged True), else the first figure the notebook drew; PNG where there is one; None without."""
    first = None
    for n, cell, data in figure_outputs(nb):
        name = figure_file(stem, n, "png" if "image/png" in data else "svg")
        if KEY_FIGURE_TAG in _tags(cell):
            return name, True
        first = first or (name, False)
    return first


def failing_cell(nb) -> FailedCell | None:
    """The first code cell with an error output: its number, source and "Name: message" (ANSI colours removed)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "error":
                error = re.sub(r"\x1b\[[0-9;]*m", "", f"{out.get('ename', '')}: {out.get('evalue', '')}")
                return FailedCell(cell.get("execution_count"), _text(cell.source), error)
    return None


# --- entries and pages ---
@dataclass
class Entry:
    """One notebook on the front page."""

    stem: str
    status: str
    seconds: float
    figures: int
    parameters: dict
    title: list[Span] = field(default_factory=list)
    answers: list[list[Span]] = field(default_factory=list)
    headline: Headline | None = None
    figure: str | None = None  # the key figure's URL, relative to the page
    figure_tagged: bool = False  # chosen by the key-figure tag, not the notebook's first figure
    failed_cell: FailedCell | None = None

    @property
    def ok(self) -> bool:
        return self.status.startswith("ok")


def entries(rows, build: Path | None = None, figures: Path | None = None, page_dir: Path | None = None) -> list[Entry]:
    """One Entry per report row (stem, status, seconds, figures, parameters), read from ``build``/STEM.ipynb; the key
    figure is linked when its file is in ``figures``, relative to ``page_dir`` (the folder of index.html)."""
    out = []
    for stem, status, seconds, nfig, used in rows:
        e = Entry(stem, status, seconds, nfig, used, title=[Span(stem)])
        path = Path(build) / f"{stem}.ipynb" if build else None
        if path is not None and path.exists():
            nb = nbformat.read(path, as_version=4)
            e.title = notebook_title(nb, stem)
            e.answers = what_it_answers(nb)
            e.headline = headline(nb) if e.ok else None  # a run cut short has no result to stand for it
            name, e.figure_tagged = key_figure(nb, stem) or (None, False)
            if name and figures and (Path(figures) / name).exists():
                rel = os.path.relpath(Path(figures) / name, page_dir) if page_dir else str(Path(figures) / name)
                e.figure = quote(Path(rel).as_posix())
            if not e.ok:
                e.failed_cell = failing_cell(nb)
        out.append(e)
    return out


def _write_summary(path: Path, rows, env: dict, params: dict, total: float, *, build: Path | None = None,
                   figures: Path | None = None) -> None:
    """reports/summary.json: what index.html shows, for scripts and tests (status, seconds, figures, parameters,
    and where the executed notebooks are readable: title, headline, key figure relative to the page)."""
    items = [{"stem": e.stem, "status": e.status, "seconds": round(e.seconds, 1), "figures": e.figures,
              "parameters": e.parameters, "title": plain(e.title),
              "headline": plain(e.headline.spans) if e.headline else None, "key_figure": e.figure}
             for e in entries(rows, build, figures, Path(path).parent)]
    path.write_text(json.dumps({
        "environment": env, "parameters": params, "total_s": round(total, 1), "notebooks": items,
    }, indent=1, default=str) + "\n", encoding="utf-8")


def _fmt_param(used: dict, key: str) -> str:
    return html.escape(str(used[key])) if key in used else "&mdash;"


def _who_used(es: list[Entry], key: str) -> str:
    """HTML: each value of parameter ``key`` with the notebooks that ran with it, e.g. embedded (00, 02) · tiny (01)."""
    by: dict[str, list[str]] = {}
    for e in es:
        if key in e.parameters:
            by.setdefault(str(e.parameters[key]), []).append(e.stem.split("_", 1)[0])  # 01_decode_strategies -> 01
    if len(by) < 2:
        return f"<strong>{html.escape(next(iter(by)))}</strong> (every notebook that takes it)" if by else "&mdash;"
    return " · ".join(f"<strong>{html.escape(v)}</strong> ({html.escape(', '.join(ns))})" for v, ns in by.items())


def _provenance(es: list[Entry], env: dict, params: dict) -> str:
    g = lambda k: html.escape(str(env.get(k, "?")))
    software = ", ".join(f"{k} {html.escape(str(env[k]))}" for k in ("python", "torch", "diffusers", "numpy", "cuda")
                         if env.get(k))
    at_once = env.get("notebooks at once", 1)
    sizes = "FAST (CI) sizes" if params.get("FAST", True) else "full (study) sizes"
    shared = (" &mdash; notebooks timed their decodes beside each other: latencies here are for checking, not for "
              "reading") if isinstance(at_once, int) and at_once > 1 else ""
    # device_name is the CPU model on a CPU run; on a GPU run the machine's CPU is named here
    cpu = "" if env.get("device", "cpu") == "cpu" else f"{html.escape(cpu_model_name())}, "
    rows = [
        ("weights", _who_used(es, "WEIGHTS")),
        ("model", _who_used(es, "MODEL")),
        ("device", (f"{_who_used(es, 'DEVICE') + '; ' if any('DEVICE' in e.parameters for e in es) else ''}"
                    f"the report ran on <strong>{g('device')}</strong>: <strong>{g('device_name')}</strong>")),
        ("machine", f"{g('platform')}, {cpu}{g('cpu_count')} CPU cores ({g('threads')} torch threads in the report)"),
        ("software", software or "&mdash;"),
        ("run", f"{sizes}; {html.escape(str(at_once))} notebook(s) at once{shared}"),
    ]
    return "\n".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)


def _article(e: Entry) -> str:
    state = "ok" if e.ok else "failed"
    parts = [f"<article class='nb {state}' id='nb-{html.escape(e.stem)}'>",
             "<div class='text'>",
             f"<h3><a href='{quote(e.stem)}.html'>{render(e.title)}</a></h3>",
             (f"<p class='meta'><span class='status {state}'>{html.escape(e.status if e.ok else 'FAILED')}</span> "
              f"&middot; {e.seconds:.1f} s &middot; {e.figures} figure(s) &middot; "
              f"<code>{html.escape(e.stem)}.ipynb</code></p>")]
    if e.answers:
        items = "".join(f"<li>{render(shorten(a, ANSWER_CHARS))}</li>" for a in e.answers[:ANSWER_ITEMS])
        more = len(e.answers) - ANSWER_ITEMS
        if more > 0:
            items += f"<li class='more'><a href='{quote(e.stem)}.html'>and {more} more on the page</a></li>"
        parts.append(f"<p class='label'>What it answers</p><ul class='answers'>{items}</ul>")
    if not e.ok:
        parts.append(f"<p class='label'>Failed</p><p class='failure'>{html.escape(e.status)}</p>")
        fc = e.failed_cell
        if fc:
            lines = fc.source.strip().splitlines()
            shown = "\n".join(lines[:FAILED_CELL_LINES]) + ("\n…" if len(lines) > FAILED_CELL_LINES else "")
            number = f"In [{fc.number}]" if fc.number is not None else "the cell"
            parts.append(f"<p class='label'>The failing cell, {html.escape(number)} <span class='src'>"
                         f"{'' if fc.error in e.status else html.escape(f'({fc.error})')}</span></p>"
                         f"<pre class='failing-cell'>{html.escape(shown)}</pre>")
    if e.headline:
        parts.append(f"<p class='label'>Headline result <span class='src'>(computed in this run; from "
                     f"{html.escape(e.headline.source)})</span></p>"
                     f"<p class='headline'>{render(shorten(e.headline.spans, HEADLINE_CHARS))}</p>")
    elif e.ok:
        parts.append("<p class='label'>Headline result</p><p class='headline none'>The notebook printed no "
                     "“What we measured” result.</p>")
    else:
        parts.append("<p class='label'>Headline result</p><p class='headline none'>None: the notebook did not run "
                     "to its results.</p>")
    parts.append("</div>")
    if e.figure:
        alt = html.escape(f"Key figure of {plain(e.title)}", quote=True)
        parts.append(f"<figure><a href='{e.figure}'><img src='{e.figure}' alt='{alt}'></a>"
                     f"<figcaption>{'the figure tagged key-figure' if e.figure_tagged else 'the notebook’s first figure'}"
                     f" (full size on click)</figcaption></figure>")
    parts.append("</article>")
    return "\n".join(parts)


_STYLE = """body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}
td,th{padding:4px 10px;text-align:left;vertical-align:top}table{border-collapse:collapse}
tr:nth-child(even){background:#f4f4f4}h1{margin-bottom:.2em}.lede{color:#444;margin-top:0}
#provenance th{white-space:nowrap;color:#555;font-weight:600}
article.nb{display:grid;grid-template-columns:minmax(0,1fr) 340px;gap:1.2em;border-top:1px solid #ddd;padding:1em 0}
article.nb h3{margin:0 0 .2em}article.nb h3 a{color:#0b4f8a;text-decoration:none}
.meta{color:#666;font-size:90%;margin:0 0 .5em}.status.ok{color:#19692c;font-weight:600}
.status.failed{color:#b00020;font-weight:600}.label{font-weight:600;margin:.6em 0 .1em;font-size:95%}
.src{font-weight:400;color:#777;font-size:90%}.answers{margin:.1em 0;padding-left:1.3em}
.answers li{margin:.1em 0}
.headline{margin:.1em 0;padding:.4em .7em;background:#f3f7fb;border-left:3px solid #0b4f8a}
.headline.none{color:#777}.failure{color:#b00020;margin:.1em 0}
pre.failing-cell{background:#fff4f4;padding:.5em;overflow-x:auto;max-height:12em}figure{margin:0}
figure img{width:100%;height:auto;border:1px solid #eee}figcaption{color:#777;font-size:80%}
var{font-family:serif;font-style:italic}code{font-size:90%}"""


def _write_index(path: Path, rows, env: dict, params: dict, total: float, *, build: Path | None = None,
                 figures: Path | None = None) -> None:
    """reports/index.html, the study's front page: provenance, one entry per notebook (see the module docstring),
    then the parameters each notebook ran with and the full environment."""
    path = Path(path)
    es = entries(rows, build, figures, path.parent)
    heads = "".join(f"<th>{k}</th>" for k in PARAMETER_NAMES)
    items = "\n".join(
        f"<tr><td><a href='{html.escape(stem)}.html'>{html.escape(stem)}</a></td><td>{html.escape(status)}</td>"
        f"<td>{seconds:.1f}</td><td>{nfig}</td>" + "".join(f"<td>{_fmt_param(used, k)}</td>" for k in PARAMETER_NAMES)
        + "</tr>" for stem, status, seconds, nfig, used in rows)
    envrows = "\n".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                        for k, v in {**env, **{f"parameter {k}": v for k, v in params.items()}}.items())
    n_ok = sum(e.ok for e in es)
    articles = "\n".join(_article(e) for e in es)
    path.write_text(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>vaestudy study report</title>
<style>{_STYLE}</style></head>
<body><h1>vaestudy: VAE decode latency, tiling and temporal chunking</h1>
<p class="lede">A study of 3D video-VAE decoding with the real diffusers classes: one notebook per question, every
number computed when the notebook ran. Below, each notebook with what it answers, one headline result it printed in
this run and its first figure; follow a title for the whole page.</p>
<h2>What produced this report</h2><table id="provenance">{_provenance(es, env, params)}</table>
<p>Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in <strong id="total-seconds">{total:.0f} s</strong>
in total; {n_ok} of {len(es)} notebook(s) ran to the end. Each notebook ran with its own parameter defaults,
overridden by the report's parameters; the table at the end shows the values each one ran with. A notebook that
cannot load the weights it asks for says so on its page.</p>
<h2>Notebooks</h2>
<section id="front-page">
{articles}
</section>
<h2>Parameters each notebook ran with</h2>
<table id="notebooks"><tr><th>notebook</th><th>status</th><th>seconds</th><th>figures</th>{heads}</tr>
{items}</table>
<h2>Environment</h2><table id="environment">{envrows}</table></body></html>
""", encoding="utf-8")
