"""The report builder on throw-away notebooks: pages, failures, SVG export, parameters, offline HTML.

Tests marked slow execute notebooks (a kernel each); the others render hand-made executed notebooks to HTML only.
"""

import html
import os
import re
import xml.etree.ElementTree as ET

import nbformat as nbf
import pytest

from vaestudy import report
from vaestudy.plots import FIGURE_FORMATS_ENV
from vaestudy.report import build_report, effective_parameters
from vaestudy.report import execute as report_execute

slow = pytest.mark.slow  # the test starts a kernel (papermill)

PLOT = "import matplotlib.pyplot as plt\n%matplotlib inline\nfrom vaestudy.plots import use_style\nuse_style()"


def _nb(path, cells, params="FAST = False\nMODEL = 'none'"):
    nb = nbf.v4.new_notebook()
    nb.cells = [nbf.v4.new_code_cell(params)] if params is not None else []
    if nb.cells:
        nb.cells[0].metadata["tags"] = ["parameters"]
    nb.cells += [nbf.v4.new_markdown_cell(c[3:]) if c.startswith("md:") else nbf.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbf.write(nb, path)


def _checkout(tmp_path):
    root = tmp_path / "checkout"
    (root / "notebooks").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    return root


def _index_row(index: str, stem: str) -> list[str]:
    row = re.search(rf"<tr><td><a href='{stem}.html'>.*?</tr>", index).group(0)
    return [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td>(.*?)</td>", row)]


@slow
def test_report_renders_pages_and_names_the_failing_cell(tmp_path, capsys):
    root = _checkout(tmp_path)
    _nb(root / "notebooks" / "01_good.ipynb", [
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n%matplotlib inline",
        "print('FAST is', FAST, 'MODEL is', MODEL)\nplt.plot([0, 1]); plt.show()",
    ])
    _nb(root / "notebooks" / "02_bad.ipynb", ["x = 1", "raise RuntimeError('boom')"])
    code = build_report(root=root, fast=True, model="wan2.1")
    out = capsys.readouterr().out
    assert code == 1
    assert "02_bad.ipynb: FAILED in cell [" in out and "boom" in out
    assert re.search(r"^\[report\] total \d+ s$", out, re.M)
    good = (root / "reports" / "01_good.html").read_text()
    assert "FAST is True MODEL is wan2.1" in good  # parameters reached the notebook
    assert (root / "reports" / "02_bad.html").exists()  # the failed page is still rendered
    index = (root / "reports" / "index.html").read_text()
    assert "01_good" in index and "FAILED" in index and "torch" in index
    assert list((root / "figures").glob("01_good_*.png"))  # out_dir defaults to the checkout
    # the front page: the good notebook's key figure from the page's folder, the failed one's failing cell
    assert "<img src='../figures/01_good_01.png'" in index
    assert "The failing cell, In [" in index and "raise RuntimeError(&#x27;boom&#x27;)" in index


@slow
def test_figures_are_exported_as_png_and_svg_into_out_dir(tmp_path, monkeypatch):
    root, out = _checkout(tmp_path), tmp_path / "out"
    _nb(root / "notebooks" / "01_plot.ipynb", [
        "from vaestudy.plots import use_style\nuse_style()  # before pyplot and %matplotlib inline",
        PLOT, "plt.plot([0, 1, 0]); plt.title('a line'); plt.show()",
        "fig, ax = plt.subplots(); ax.imshow([[0, 1], [1, 0]]); plt.show()",
    ])
    monkeypatch.delenv(FIGURE_FORMATS_ENV, raising=False)
    assert build_report(root=root, out_dir=out) == 0
    first = {f.name: f.read_bytes() for f in (out / "figures").iterdir()}
    assert build_report(root=root, out_dir=out) == 0  # nothing changed: the same bytes, no churn in git
    assert {f.name: f.read_bytes() for f in (out / "figures").iterdir()} == first
    assert FIGURE_FORMATS_ENV not in os.environ  # restored after the run
    for d in ("build", "reports", "figures"):
        assert not (root / d).exists()  # nothing written next to the notebooks
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    svgs = sorted((out / "figures").glob("*.svg"))
    assert pngs == ["01_plot_01.png", "01_plot_02.png"]
    assert [p.name for p in svgs] == ["01_plot_01.svg", "01_plot_02.svg"]
    for svg in svgs:
        root_el = ET.parse(svg).getroot()  # well-formed XML
        assert root_el.tag in ("svg", "{http://www.w3.org/2000/svg}svg")
        assert "clip-path" in svg.read_text() and "<dc:date>" not in svg.read_text()  # ids that were random, no date
    assert "a line" in svgs[0].read_text()
    # the executed notebook keeps both formats; the HTML page shows the PNG only
    built = nbf.read(out / "build" / "01_plot.ipynb", as_version=4)
    images = [o["data"] for c in built.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2 and all("image/svg+xml" in d for d in images)
    page = (out / "reports" / "01_plot.html").read_text()
    assert len(re.findall(r"<img\b[^>]*src=\"data:image/png;base64,", page)) == 2
    assert 'data-mime-type="image/svg+xml"' not in page


@slow
def test_svg_env_is_restored_to_its_previous_value(tmp_path, monkeypatch):
    root = _checkout(tmp_path)
    _nb(root / "notebooks" / "01_x.ipynb", ["x = 1"])
    monkeypatch.setenv(FIGURE_FORMATS_ENV, "png")
    assert build_report(root=root, out_dir=tmp_path / "out") == 0
    assert os.environ[FIGURE_FORMATS_ENV] == "png"


@slow
def test_index_lists_the_parameters_each_notebook_ran_with(tmp_path, capsys):
    root = _checkout(tmp_path)
    _nb(root / "notebooks" / "01_defaults.ipynb", ["print(MODEL, WEIGHTS)"],
        params="MODEL = 'cogvideox'  # a comment\nWEIGHTS = 'tiny'\nDEVICE = 'cpu'\nFAST = False\nSEED = 3\n"
               "SIZES = [(1, 2)]\nDERIVED = len(SIZES)")
    _nb(root / "notebooks" / "02_no_model.ipynb", ["print(WEIGHTS)"],
        params="WEIGHTS = 'embedded'\nFAST = False\nSEED = 0")
    _nb(root / "notebooks" / "03_no_params_cell.ipynb", ["print(FAST)"], params=None)
    assert build_report(root=root, out_dir=tmp_path / "out", model="wan2.1", weights="random") == 0
    index = (tmp_path / "out" / "reports" / "index.html").read_text()
    for th in ("MODEL", "WEIGHTS", "DEVICE", "FAST", "SEED"):
        assert f"<th>{th}</th>" in index
    # columns: notebook, status, seconds, figures, MODEL, WEIGHTS, DEVICE, FAST, SEED
    assert _index_row(index, "01_defaults")[4:] == ["wan2.1", "random", "cpu", "True", "3"]
    assert _index_row(index, "02_no_model")[4:] == ["—", "random", "—", "True", "0"]  # MODEL is not its parameter
    assert _index_row(index, "03_no_params_cell")[4:] == ["wan2.1", "random", "—", "True", "—"]
    assert re.search(r"in <strong id=\"total-seconds\">\d+ s</strong>", index)
    built = nbf.read(tmp_path / "out" / "build" / "01_defaults.ipynb", as_version=4)
    assert effective_parameters(built) == {"MODEL": "wan2.1", "WEIGHTS": "random", "DEVICE": "cpu",
                                           "FAST": True, "SEED": 3, "SIZES": [(1, 2)]}
    assert "wan2.1 random" in (tmp_path / "out" / "reports" / "01_defaults.html").read_text()


@slow
def test_pages_load_nothing_from_the_network(tmp_path):
    pytest.importorskip("ipywidgets")
    root = _checkout(tmp_path)
    _nb(root / "notebooks" / "01_offline.ipynb", [
        "md:# Math and a table\n\nInline $b = \\frac{bits}{px}$ and\n\n$$R = \\sum_i x_i$$\n\n| a | b |\n|---|---|\n| 1 | 2 |",
        "import ipywidgets as widgets\nfrom IPython.display import display\n"
        "display(widgets.IntSlider(value=3, description='tile'))",
        "from IPython.display import HTML\nHTML('<table><tr><td>cell</td></tr></table>')",
        PLOT, "plt.plot([1, 2]); plt.show()",
    ])
    assert build_report(root=root, out_dir=tmp_path / "out") == 0
    built = nbf.read(tmp_path / "out" / "build" / "01_offline.ipynb", as_version=4)
    assert "widgets" in built.metadata  # the widget state was saved: the test exercises its stripping
    reports = tmp_path / "out" / "reports"
    page = (reports / "01_offline.html").read_text()
    tags = re.findall(r"<(?:script|link|img|iframe|source)\b[^>]*>", page, re.I)
    remote = [t for t in tags if re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", t, re.I)]
    assert not remote, remote
    for cdn in ("cdnjs", "unpkg", "jsdelivr", "require.min.js", "mermaid.esm", "embed-amd"):
        assert cdn not in page.lower(), cdn
    assert "application/vnd.jupyter.widget-state+json" not in page
    assert page.count("<table") >= 2  # the markdown table and the HTML output
    # math: the TeX stays in the page for MathJax, loaded from the copy beside the page (typesetting: test_browser)
    assert "$b = \\frac{bits}{px}$" in page
    scripts = re.findall(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", page)
    assert scripts == [report.MATHJAX_URL]
    assert (reports / scripts[0].split("?")[0]).is_file()
    assert "IntSlider(" not in page and "interactive controls (tile)" in page  # the widget's note, not its repr


@slow
def test_a_cell_that_times_out_is_retried_once_then_fails_the_notebook(tmp_path, monkeypatch, capsys):
    """A stuck cell (the nbclient widget hang) costs one more attempt, not the report; two timeouts fail it."""
    root = _checkout(tmp_path)
    marker = tmp_path / "first-attempt-done"
    _nb(root / "notebooks" / "01_flaky.ipynb", [  # sleeps past the timeout on the first attempt only
        f"import pathlib, time\nm = pathlib.Path({str(marker)!r})\nfirst = not m.exists()\nm.touch()\n"
        "if first:\n    time.sleep(30)\nprint('ran')"])
    _nb(root / "notebooks" / "02_stuck.ipynb", ["import time\ntime.sleep(30)"])
    assert build_report(root=root, out_dir=tmp_path / "out", cell_timeout_s=3) == 1
    out = capsys.readouterr().out
    assert "01_flaky.ipynb: attempt 1 stopped after 3 s" in out
    assert "02_stuck.ipynb: attempt 2 stopped after 3 s" in out
    index = (tmp_path / "out" / "reports" / "index.html").read_text()
    assert _index_row(index, "01_flaky")[1].startswith("ok (attempt 2; 1 earlier attempt(s) timed out after 3 s")
    assert _index_row(index, "02_stuck")[1].startswith("FAILED: every attempt (2) timed out after 3 s")
    assert "ran" in (tmp_path / "out" / "reports" / "01_flaky.html").read_text()


@slow
def test_kernels_draw_inline_whatever_the_callers_mplbackend(tmp_path, monkeypatch):
    """Headless servers set MPLBACKEND=Agg; ipykernel then never installs the inline backend, every plt.show()
    draws nothing and every figure stays open. The report's kernels always get the inline backend, and a widget
    cell (ipywidgets.interactive over a plotting function) runs to the end headless."""
    root, out = _checkout(tmp_path), tmp_path / "out"
    _nb(root / "notebooks" / "01_widget.ipynb", [
        "import matplotlib.pyplot as plt\nimport ipywidgets as widgets\nimport matplotlib\nprint(matplotlib.get_backend())",
        "def show(n=3):\n    plt.plot(range(n)); plt.show()\n    print('n =', n)\n"
        "display(widgets.interactive(show, n=widgets.IntSlider(value=3, min=1, max=9)))",
        "show(4)",
    ])
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert build_report(root=root, out_dir=out) == 0
    assert os.environ["MPLBACKEND"] == "Agg"  # the caller's environment is restored
    nb = nbf.read(out / "build" / "01_widget.ipynb", as_version=4)
    first = next(c for c in nb.cells if "get_backend" in c.source)
    assert "".join(o.get("text", "") for o in first.outputs).strip() == report.INLINE_BACKEND
    # headless: nothing talks back to the widgets, so what the widget's function prints and draws at its default
    # value lands in the widget cell's own outputs, where the static page shows it
    widget_cell = next(c for c in nb.cells if "widgets.interactive" in c.source)
    assert "n = 3" in "".join(o.get("text", "") for o in widget_cell.outputs)
    assert any("image/png" in o.get("data", {}) for o in widget_cell.outputs)
    assert list((out / "figures").glob("01_widget_*.png"))  # the figures exist


@slow
def test_a_notebook_that_shows_figures_but_holds_none_fails(tmp_path, capsys):
    root = _checkout(tmp_path)
    _nb(root / "notebooks" / "01_agg.ipynb", [
        "import matplotlib\nmatplotlib.use('Agg')  # forced off the inline backend inside the notebook\n"
        "import matplotlib.pyplot as plt",
        "plt.plot([0, 1]); plt.show()",
    ])
    assert build_report(root=root, out_dir=tmp_path / "out") == 1
    assert "call plt.show() but the notebook holds no figure" in capsys.readouterr().out


@slow
def test_jobs_execute_notebooks_at_once_with_their_own_results_dir(tmp_path):
    root, out = _checkout(tmp_path), tmp_path / "out"
    for i in (1, 2):  # two kernels at once: each must see its share of the threads and the shared results dir
        _nb(root / "notebooks" / f"0{i}_nb.ipynb", [
            "import os, torch\nfrom vaestudy.report import results_dir\n"
            "print(results_dir(), torch.get_num_threads(), os.environ.get('OMP_NUM_THREADS'))"])
    assert build_report(root=root, out_dir=out, jobs=2, notebooks=["02_nb.ipynb", "01_nb.ipynb"]) == 0
    for i in (1, 2):
        nb = nbf.read(out / "build" / f"0{i}_nb.ipynb", as_version=4)
        printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
        threads = str(max(1, (os.cpu_count() or 1) // 2))
        assert printed.split() == [str(out / "results"), threads, threads]
    index = (out / "reports" / "index.html").read_text()
    assert index.index("01_nb") < index.index("02_nb")  # rows in notebook order, whatever order they ran in
    with pytest.raises(ValueError, match="jobs=0 must be an integer >= 1"):
        build_report(root=root, out_dir=out, jobs=0)


@slow
def test_kernels_run_over_ipc_without_the_tcp_warning(tmp_path, capfd):
    root = _checkout(tmp_path)
    _nb(root / "notebooks" / "01_quiet.ipynb", ["import os\nprint(os.getpid())"])
    assert build_report(root=root, out_dir=tmp_path / "out") == 0
    err = capfd.readouterr().err
    assert "without encryption" not in err and "Traceback" not in err


@slow
def test_the_headless_client_never_answers_a_widget():
    """nbclient's browser imitation sends comm messages to the kernel mid-cell (the widget-cell hang); ours does not."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import papermill_engines

    name = report_execute._register_headless_engine()
    assert papermill_engines.get_engine(name).__name__ == "HeadlessEngine"
    headless = [c for c in PapermillNotebookClient.__subclasses__() if c.__name__ == "HeadlessClient"][-1]

    class Manager:  # what papermill's NotebookExecutionManager gives the client's constructor
        nb = nbf.v4.new_notebook()
        autosave_cell_every = 30

    client = headless(Manager(), kernel_name="python3")
    msg = {"content": {"comm_id": "x", "target_name": "jupyter.widget",
                       "data": {"state": {"_model_name": "OutputModel", "_model_module": "@jupyter-widgets/output"}}}}
    assert client.comm_open_handlers["jupyter.widget"](msg) is None  # no OutputWidget object: nothing is sent back


# ---- the static page, from hand-made executed notebooks (no kernel: fast) ----------------------------------------
WIDGET_REPR = "interactive(children=(IntSlider(value=5, description='tile', max=9), Output()), _dom_classes=())"


def _executed(cells):
    """An executed-looking notebook: (source, tags, outputs) per code cell, "md:..." for a markdown cell."""
    nb = nbf.v4.new_notebook()
    for c in cells:
        if isinstance(c, str):
            nb.cells.append(nbf.v4.new_markdown_cell(c[3:]))
            continue
        source, tags, outputs = c
        cell = nbf.v4.new_code_cell(source, outputs=outputs)
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _page(nb) -> str:
    body, _ = report.offline_html_exporter().from_notebook_node(report.for_html(nb))
    return body


def _stdout(text):
    return nbf.v4.new_output("stream", name="stdout", text=text)


def test_code_is_folded_and_cell_tags_are_honoured():
    """Readers get prose, outputs and tables first: every input folded under "code", tags remove or unfold."""
    page = _page(_executed([
        "md:## Measured $b$",
        ("plumbing_input = 1", (), [_stdout("plumbing output\n")]),
        ("hidden_input = 2", ("hide-input",), [_stdout("hidden-input output\n")]),
        ("removed_input = 3", ("remove-input",), [_stdout("removed-input output\n")]),
        ("removed_cell = 4", ("remove-cell",), [_stdout("removed-cell output\n")]),
        ("shown_input = 5", ("show-input",), [_stdout("shown-input output\n")]),
    ]))
    folds = re.findall(r"<details class=\"vaestudy-code\"([^>]*)><summary>code</summary>(.*?)</details>", page, re.S)
    assert [("open" in attrs, re.search(r"(\w+_input)", body).group(1)) for attrs, body in folds] == [
        (False, "plumbing_input"), (False, "hidden_input"), (True, "shown_input")]
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    for shown in ("plumbing output", "hidden-input output", "removed-input output", "shown-input output"):
        assert shown in text, shown  # outputs unchanged
    assert "removed_input" not in text and "removed_cell" not in text and "removed-cell output" not in text
    assert "## Measured $b$" not in text and "Measured $b$" in text  # markdown rendered, TeX left to MathJax


def test_a_page_shows_the_injected_parameters_not_the_defaults_beside_them():
    cells = [("MODEL = 'default-model'", ("parameters",), []), ("MODEL = 'run-model'", ("injected-parameters",), []),
             ("print(MODEL)", (), [_stdout("run-model\n")])]
    page = html.unescape(re.sub(r"<[^>]+>", "", _page(_executed(cells))))
    assert "run-model" in page and "default-model" not in page and "parameters of this run" in page
    alone = html.unescape(re.sub(r"<[^>]+>", "", _page(_executed([cells[0], cells[2]]))))
    assert "default-model" in alone  # nothing injected: the defaults are what ran


def test_a_widget_view_becomes_a_note_and_its_figure_stays():
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    nb = _executed([("interact(show, tile=5)", (), [
        _stdout("tile = 5\n"),
        nbf.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure size 640x480>"}),
        nbf.v4.new_output("display_data", data={
            "text/plain": WIDGET_REPR,
            report.WIDGET_VIEW_MIME: {"model_id": "0123", "version_major": 2, "version_minor": 0}}),
    ])])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    page = _page(nb)
    for repr_part in ("interactive(children=", "IntSlider(", report.WIDGET_VIEW_MIME, "widget-state"):
        assert repr_part not in page, repr_part
    assert "In JupyterLab this cell has interactive controls (tile)" in page
    assert "tile = 5" in page and f"data:image/png;base64,{png}" in page  # what the widget drew at its default
    assert report.WIDGET_VIEW_MIME in str(nb)  # the executed notebook itself is left as it was


def test_mathjax_is_copied_beside_the_pages_once(tmp_path):
    url = report.install_mathjax(tmp_path)
    assert url == report.MATHJAX_URL and not url.startswith(("/", "http")) and "//" not in url
    mathjax = tmp_path / url.split("?")[0]
    assert mathjax.is_file() and (mathjax.parent / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    assert (mathjax.parent / "fonts" / "HTML-CSS" / "STIX-Web").is_dir()  # the only fonts that package ships
    before = mathjax.stat().st_mtime_ns
    report.install_mathjax(tmp_path)
    assert mathjax.stat().st_mtime_ns == before  # a current copy is kept, not copied again
    page = _page(_executed(["md:$$R = \\frac{S}{M}$$"]))
    assert re.findall(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", page) == [url]  # the page loads that copy, nothing else


@pytest.mark.parametrize("url", ["https://cdn.example/MathJax.js", "//cdn.example/MathJax.js", ""])
def test_the_exporter_refuses_a_remote_mathjax(url):
    with pytest.raises(ValueError, match="mathjax_url=.* must be a relative path to MathJax.js"):
        report.offline_html_exporter(url)
