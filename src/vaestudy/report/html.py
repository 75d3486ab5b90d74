"""Pages for readers: an offline HTML exporter (MathJax copied locally, code folded, widgets as notes) and
the figures a notebook drew, exported as files."""

from __future__ import annotations

import base64
import copy
import html
import re
import shutil
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

from vaestudy.report.execute import INLINE_BACKEND


def figure_outputs(nb):
    """Yield (number, cell, output data) for each figure (PNG or SVG output) of an executed notebook, numbered
    1, 2, ... in page order: the numbers of the files ``_export_figures`` writes (``figure_file``)."""
    n = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data or "image/svg+xml" in data:
                n += 1
                yield n, cell, data


def figure_file(stem: str, number: int, ext: str) -> str:
    """The file name of a notebook's figure ``number`` in figures/: STEM_NN.png or STEM_NN.svg."""
    return f"{stem}_{number:02d}.{ext}"


def _export_figures(nb, stem: str, figures: Path) -> int:
    """Write every PNG/SVG output of an executed notebook into figures/ as STEM_NN.png|svg; returns the count."""
    for old in (*figures.glob(f"{stem}_[0-9][0-9].png"), *figures.glob(f"{stem}_[0-9][0-9].svg")):
        old.unlink()  # a figure the notebook no longer draws must not linger
    n = 0
    for n, _, data in figure_outputs(nb):
        if "image/png" in data:
            (figures / figure_file(stem, n, "png")).write_bytes(base64.b64decode(data["image/png"]))
        if "image/svg+xml" in data:
            svg = data["image/svg+xml"]
            (figures / figure_file(stem, n, "svg")).write_text("".join(svg) if isinstance(svg, list) else svg,
                                                               encoding="utf-8")
    return n


OFFLINE_TEMPLATE = "vaestudy_offline.html.j2"

# MathJax 2.7 as the jupyter-server-mathjax package ships it, copied beside the pages (reports/_static/mathjax/) and
# loaded by a relative URL, so a page opened from file:// with no network typesets its math. That package ships one
# combined configuration (TeX input, HTML-CSS output) and the STIX-Web fonts only, hence the font settings below
# (the classic Jupyter notebook's own, for the same files).
MATHJAX_PACKAGE = "jupyter_server_mathjax"
MATHJAX_DIR = "_static/mathjax"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
MATHJAX_URL = f"{MATHJAX_DIR}/MathJax.js?config={MATHJAX_CONFIG}"  # relative to the page
# The whole distribution is copied (12 MB): MathJax loads extensions, fonts and a localisation for the reader's
# browser language on demand, so a trimmed list would break on some pages or browsers, and only there.

# The lab template, less everything it would fetch from a CDN (require.js, the widget manager, mermaid.js), with
# MathJax from the local copy, and every code cell's input folded under a <details> toggle: closed by default and
# for the tag hide-input, open for show-input (remove-input and remove-cell go through TagRemovePreprocessor).
# The page sets data-mathjax="done" on <html> once MathJax has typeset it, for tests and scripts to wait on.
_OFFLINE_TEMPLATE_SOURCE = r"""{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
<script type="text/javascript">
window.MathJax = {
  tex2jax: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]],
            processEscapes: true, processEnvironments: true},
  TeX: {equationNumbers: {autoNumber: "AMS", useLabelIds: true}},
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
               linebreaks: {automatic: true},
               // its stand-in font's url('about:blank') is a blocked cross-origin load on file:// pages
               styles: {"@font-face": {"font-family": "MathJax_Blank", src: "local('MathJax_Blank')"}}},
  messageStyle: "none",
  AuthorInit: function () {
    MathJax.Hub.Register.StartupHook("End", function () { document.documentElement.dataset.mathjax = "done"; });
  }
};
</script>
<script type="text/javascript" src="{{ resources.mathjax_url }}"></script>
{%- endblock html_head_js_mathjax -%}
{%- block extra_css -%}
<style type="text/css">
details.vaestudy-code > summary { cursor: pointer; color: #777; font-size: 85%; margin: 2px 0 2px 64px; }
details.vaestudy-code[open] > summary { margin-bottom: 4px; }
.vaestudy-widget-note { color: #555; font-style: italic; }
</style>
{%- endblock extra_css -%}
{% block input_group -%}
<details class="vaestudy-code"{{ ' open' if 'show-input' in cell.metadata.get('tags', []) }}><summary>{{ 'parameters of this run' if 'injected-parameters' in cell.metadata.get('tags', []) else 'code' }}</summary>
{{ super() }}
</details>
{%- endblock input_group %}
"""

# Cell tags the pages honour (the names Jupyter Book uses): remove-cell drops the cell, remove-input its input;
# hide-input folds the input (every input is folded anyway), show-input unfolds it (in the template above).
REMOVE_CELL_TAGS = ("remove-cell",)
REMOVE_INPUT_TAGS = ("remove-input",)


def mathjax_source() -> Path:
    """The MathJax 2.7 folder that the jupyter-server-mathjax package installs (MathJax.js and its extensions)."""
    spec = find_spec(MATHJAX_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{MATHJAX_PACKAGE} is not installed; the report's pages typeset math with the "
                                  f"MathJax it ships: pip install jupyter-server-mathjax (a vaestudy dependency)")
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    if not (static / "MathJax.js").exists():
        raise FileNotFoundError(f"{static / 'MathJax.js'} is missing: reinstall jupyter-server-mathjax")
    return static


def install_mathjax(reports: Path) -> str:
    """Copy MathJax beside the pages (``reports``/_static/mathjax) unless that copy is current; returns the
    relative URL of MathJax.js (with its configuration) for the exporter's ``mathjax_url``."""
    dest = Path(reports) / MATHJAX_DIR
    stamp = dest / ".jupyter-server-mathjax-version"
    current = metadata.version("jupyter-server-mathjax")
    source = mathjax_source()
    if not (stamp.exists() and stamp.read_text() == current and (dest / "MathJax.js").exists()):
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(source, dest)
        stamp.write_text(current)
    return MATHJAX_URL


def offline_html_exporter(mathjax_url: str = MATHJAX_URL):
    """An nbconvert HTMLExporter (lab template) whose pages load nothing from the network: MathJax from
    ``mathjax_url`` (relative to the page; ``install_mathjax`` puts it there), code inputs folded, tags honoured."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    if not isinstance(mathjax_url, str) or not mathjax_url or "//" in mathjax_url.split("?")[0]:
        raise ValueError(f"mathjax_url={mathjax_url!r} must be a relative path to MathJax.js (pages work offline), "
                         f"e.g. {MATHJAX_URL}")
    exporter = HTMLExporter(template_name="lab", template_file=OFFLINE_TEMPLATE,
                            extra_loaders=[DictLoader({OFFLINE_TEMPLATE: _OFFLINE_TEMPLATE_SOURCE})],
                            mathjax_url=mathjax_url, require_js_url="", jquery_url="", widget_renderer_url="",
                            jupyter_widgets_base_url="")
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags=set(REMOVE_CELL_TAGS),
                                                         remove_input_tags=set(REMOVE_INPUT_TAGS)), enabled=True)
    return exporter


WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def widget_note(plain: str) -> str:
    """The static page's stand-in for a widget view, naming its controls from the repr (``description='tile'``)."""
    names = list(dict.fromkeys(re.findall(r"description='([^']+)'", plain or "")))
    which = f" ({html.escape(', '.join(names))})" if names else ""
    return (f'<p class="vaestudy-widget-note">In JupyterLab this cell has interactive controls{which}; this static '
            f"page shows the result at their default values.</p>")


def for_html(nb):
    """A copy of an executed notebook trimmed for the static page: no widget state, each widget view replaced by a
    note (its text/plain fallback is a repr such as ``interactive(children=(IntSlider(...``), no SVG twin of a PNG,
    and, where papermill injected parameters, only those: the page shows the values that produced it, not the
    notebook's defaults beside them."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    if any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells):
        nb.cells = [c for c in nb.cells if "parameters" not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW_MIME in data:
                plain = data.get("text/plain", "")
                out["data"] = {"text/html": widget_note("".join(plain) if isinstance(plain, list) else plain)}
                out["metadata"] = {}
            elif "image/svg+xml" in data and "image/png" in data:
                del data["image/svg+xml"]
    return nb


def _figure_check(nb, nfig: int) -> str | None:
    """A failure status when cells that show a figure ran but the page holds none (e.g. a non-inline backend)."""
    showing = sum(1 for c in nb.cells if c.cell_type == "code" and "plt.show()" in c.source)
    if showing and not nfig:
        return (f"FAILED: {showing} cell(s) call plt.show() but the notebook holds no figure "
                f"(the kernel's matplotlib backend is not {INLINE_BACKEND!r}?)")
    return None
