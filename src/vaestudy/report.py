"""The study report: execute every notebook (papermill) into build/, render HTML (nbconvert) into reports/.

A failing notebook does not stop the others: its error (notebook and cell) is printed, the
pages that did execute are still written, and the command exits non-zero.

Figures are exported into figures/ as PNG and SVG (the kernels run with $VAESTUDY_FIGURE_FORMATS=png,svg,
which ``plots.use_style`` reads; no date and fixed SVG ids, so an unchanged figure is rewritten with the same
bytes). The HTML pages are for readers and work offline from file://: nothing is loaded from a CDN; math is
typeset by the MathJax copy in reports/_static/mathjax/ (from the jupyter-server-mathjax package); a widget shows
as a note that it is interactive in JupyterLab; every code cell's input is folded under a "code" toggle, so the
narrative, figures and tables come first (cell tags: show-input, hide-input, remove-input, remove-cell).
"""

from __future__ import annotations

import ast
import base64
import copy
import functools
import html
import logging
import os
import platform
import re
import shutil
import tempfile
import time
import uuid
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

import torch

# The kernels draw with matplotlib's inline backend whatever the caller's environment: ipykernel installs it only
# when $MPLBACKEND is unset, so a headless server's MPLBACKEND=Agg made every plt.show() draw nothing (pages with
# 0 figures) and left every figure open in the kernel.  build_report sets this for the kernels it starts.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"

# A cell that runs longer than this is stopped instead of hanging the report (a guard; the widget-cell hang it was
# added for is addressed at its root by the headless engine below). A notebook stopped that way is executed once
# more from the start (its row in the index says so); a second timeout fails it. FAST cells take seconds on CPU,
# full-size ones minutes.
CELL_TIMEOUT_S = {True: 600, False: 3600}


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


def environment_summary(device: str | None) -> dict:
    import diffusers

    dev = device or "cpu"
    name = torch.cuda.get_device_name(torch.device(dev)) if dev.startswith("cuda") and torch.cuda.is_available() \
        else (platform.processor() or platform.machine())
    return {"device": dev, "device name": name, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads()}


def _export_figures(nb, stem: str, figures: Path) -> int:
    """Write every PNG/SVG output of an executed notebook into figures/ as STEM_NN.png|svg; returns the count."""
    for old in (*figures.glob(f"{stem}_[0-9][0-9].png"), *figures.glob(f"{stem}_[0-9][0-9].svg")):
        old.unlink()  # a figure the notebook no longer draws must not linger
    n = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data or "image/svg+xml" in data:
                n += 1
            if "image/png" in data:
                (figures / f"{stem}_{n:02d}.png").write_bytes(base64.b64decode(data["image/png"]))
            if "image/svg+xml" in data:
                svg = data["image/svg+xml"]
                (figures / f"{stem}_{n:02d}.svg").write_text("".join(svg) if isinstance(svg, list) else svg,
                                                              encoding="utf-8")
    return n


PARAMETER_NAMES = ("MODEL", "WEIGHTS", "DEVICE", "FAST", "SEED")


def _literal_assignments(source: str) -> dict:
    """NAME = <literal> statements at the top level of a code cell (anything else is ignored)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return values


def effective_parameters(nb) -> dict:
    """The parameters an executed notebook ran with: its ``parameters`` cell, then papermill's overrides.

    An override of a name the parameters cell does not declare is left out (the notebook does not use it:
    papermill warns "Passed unknown parameter"); a notebook without a parameters cell shows the overrides.
    """
    def tagged(tag):
        return [c for c in nb.cells if c.cell_type == "code" and tag in c.get("metadata", {}).get("tags", [])]

    declared, injected = {}, {}
    for cell in tagged("parameters"):
        declared.update(_literal_assignments(cell.source))
    for cell in tagged("injected-parameters"):
        injected.update(_literal_assignments(cell.source))
    if not tagged("parameters"):
        return injected
    return {**declared, **{k: v for k, v in injected.items() if k in declared}}


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
<details class="vaestudy-code"{{ ' open' if 'show-input' in cell.metadata.get('tags', []) }}><summary>code</summary>
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
    note (its text/plain fallback is a repr such as ``interactive(children=(IntSlider(...``), no SVG twin of a PNG."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
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


def _failed_cell(exc) -> str:
    cell = getattr(exc, "exec_count", None)
    return f"cell [{cell}]" if cell is not None else "a cell"


@functools.lru_cache(maxsize=None)
def _ipc_kernel_manager():
    """A kernel manager whose kernels talk over IPC (unix sockets): nothing listens on TCP, and ipykernel has no
    "running over TCP without encryption" warning to print for every notebook."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            # a socket path prefix of its own: the default ("kernel-ipc" in the working directory, ports 1, 2, ...)
            # is shared by kernels started at once from one folder, and they then steal each other's sockets
            prefix = Path(tempfile.gettempdir()) / f"vaestudy-kernel-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            super().__init__(transport="ipc", ip=str(prefix), **kwargs)

    return IPCKernelManager


HEADLESS_ENGINE = "vaestudy-headless"


@functools.lru_cache(maxsize=None)
def _register_headless_engine() -> str:
    """A papermill engine whose client never talks back to the kernel's widgets; returns its name.

    nbclient imitates a browser for ``ipywidgets.Output`` (which ``interactive`` uses): on each widget's comm_open
    it creates an object that sends comm messages *to the kernel* over the shell channel while the cell is still
    executing. With ipykernel 7 (separate shell-channel thread) such a cell sometimes never completes: the kernel
    goes idle and nbclient keeps waiting (seen here on notebook 05's ``show_budget`` cell, twice in one day, with
    and without MPLBACKEND=Agg; nbclient#312 reports the same symptom). A static report needs none of that traffic:
    this client answers every widget comm_open with nothing, so it sends nothing back, and whatever a widget's
    function prints lands in the cell's own outputs, where the static page shows it.
    """
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class HeadlessClient(PapermillNotebookClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.comm_open_handlers = {"jupyter.widget": lambda msg: None}

    class HeadlessEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            kwargs.pop("input_path", None)
            return HeadlessClient(nb_man, timeout=execution_timeout, startup_timeout=start_timeout,
                                  kernel_name=kernel_name, log=logging.getLogger("papermill"),
                                  log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file,
                                  **kwargs).execute()

    papermill_engines.register(HEADLESS_ENGINE, HeadlessEngine)
    return HEADLESS_ENGINE


def _execute(nb_path: Path, out_path: Path, params: dict, cell_timeout_s: int, attempts: int = 2) -> str:
    """Run one notebook with papermill; "ok", "ok (...)" after a retried timeout, or "FAILED in ..."."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError

    timed_out = []
    for attempt in range(1, attempts + 1):
        try:
            pm.execute_notebook(str(nb_path), str(out_path), parameters=params, kernel_name="python3",
                                cwd=str(nb_path.parent), progress_bar=False, log_output=False,
                                execution_timeout=cell_timeout_s, kernel_manager_class=_ipc_kernel_manager(),
                                engine_name=_register_headless_engine())
        except CellTimeoutError as exc:  # a stuck client, not an error of the notebook: run it again
            timed_out.append(str(exc).splitlines()[0])
            print(f"[report] {nb_path.name}: attempt {attempt} stopped after {cell_timeout_s} s in one cell: "
                  f"{timed_out[-1]}")
            continue
        except Exception as exc:  # papermill raises PapermillExecutionError with the cell
            return (f"FAILED in {_failed_cell(exc)}: {getattr(exc, 'ename', type(exc).__name__)}: "
                    f"{getattr(exc, 'evalue', exc)}")
        if timed_out:
            return f"ok (attempt {attempt}; {len(timed_out)} earlier attempt(s) timed out after {cell_timeout_s} s in a cell)"
        return "ok"
    return f"FAILED: every attempt ({attempts}) timed out after {cell_timeout_s} s in a cell ({timed_out[-1]})"


def _timed_execute(nb_path: Path, out_path: Path, params: dict, cell_timeout_s: int) -> tuple[Path, str, float]:
    t0 = time.perf_counter()
    status = _execute(nb_path, out_path, params, cell_timeout_s)
    return nb_path, status, time.perf_counter() - t0


def _execute_all(paths: list[Path], build: Path, params: dict, cell_timeout_s: int, jobs: int):
    """Yield (notebook, status, seconds) as each finishes: one at a time, or ``jobs`` at once in worker processes."""
    if jobs == 1:
        for nb_path in paths:
            yield _timed_execute(nb_path, build / nb_path.name, params, cell_timeout_s)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_timed_execute, p, build / p.name, params, cell_timeout_s) for p in paths]
        for f in as_completed(futures):
            yield f.result()


def build_report(*, model: str | None = None, weights: str | None = None, device: str | None = None,
                 fast: bool = True, notebooks: list[str] | None = None, root: Path | None = None,
                 out_dir: Path | None = None, jobs: int = 1) -> int:
    """Execute notebooks with shared parameters and write reports/index.html; returns an exit code.

    ``root`` is the checkout whose notebooks/ run (default: found from the current directory); build/,
    reports/, figures/ and results/ go into ``out_dir`` (default: ``root``). ``jobs`` > 1 executes that many
    notebooks at once, each kernel with cpu_count // jobs threads (unless $OMP_NUM_THREADS is set): faster on a
    shared machine, but notebooks then time their decodes beside each other, so latency numbers are only for
    checking, not for reading (the index says so).
    """
    import nbformat

    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} must be an integer >= 1 (notebooks executed at once)")

    t_start = time.perf_counter()
    root = Path(root) if root else repo_root()
    out_dir = Path(out_dir) if out_dir else root
    build, reports, figures = out_dir / "build", out_dir / "reports", out_dir / "figures"
    for d in (build, reports, figures):
        d.mkdir(parents=True, exist_ok=True)
    paths = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if notebooks:
        wanted = {Path(n).name for n in notebooks}
        unknown = wanted - {p.name for p in paths}
        if unknown:
            raise ValueError(f"notebooks={sorted(unknown)} not found; valid: {[p.name for p in paths]}")
        by_name = {p.name: p for p in paths}
        paths = [by_name[n] for n in dict.fromkeys(Path(n).name for n in notebooks)]  # the caller's order: with
        # jobs > 1 it is the order notebooks start in (the index lists them in file order either way)
    params = {"FAST": fast}
    for key, val in (("MODEL", model), ("WEIGHTS", weights), ("DEVICE", device)):
        if val is not None:
            params[key] = val
    exporter = offline_html_exporter(install_mathjax(reports))
    rows, failures = [], []
    from vaestudy.plots import FIGURE_FORMATS_ENV

    # papermill's kernels inherit the environment: plots.use_style reads the figure formats, ipykernel the backend
    kernel_env = {FIGURE_FORMATS_ENV: "png,svg", "MPLBACKEND": INLINE_BACKEND, RESULTS_DIR_ENV: str(out_dir / "results")}
    if jobs > 1 and "OMP_NUM_THREADS" not in os.environ:
        kernel_env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    saved = {k: os.environ.get(k) for k in kernel_env}
    os.environ.update(kernel_env)
    try:
        for nb_path, status, seconds in _execute_all(paths, build, params, CELL_TIMEOUT_S[bool(fast)], jobs):
            out_path = build / nb_path.name
            used = {}
            if out_path.exists():
                nb = nbformat.read(out_path, as_version=4)
                used = effective_parameters(nb)
                body, _ = exporter.from_notebook_node(for_html(nb))
                (reports / f"{nb_path.stem}.html").write_text(body, encoding="utf-8")
                nfig = _export_figures(nb, nb_path.stem, figures)
                if status.startswith("ok"):
                    status = _figure_check(nb, nfig) or status
            else:
                nfig = 0
            if not status.startswith("ok"):
                failures.append(f"{nb_path.name}: {status}")
                print(f"[report] {nb_path.name} {status}")
            rows.append((nb_path.stem, status, seconds, nfig, used))
            print(f"[report] {nb_path.name}: {status} in {seconds:.1f} s, {nfig} figures", flush=True)
        rows.sort(key=lambda r: r[0])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    env = environment_summary(device)
    env["notebooks at once"] = jobs
    total = time.perf_counter() - t_start
    _write_index(reports / "index.html", rows, env, params, total)
    _write_summary(reports / "summary.json", rows, env, params, total)
    print(f"[report] wrote {reports / 'index.html'}")
    if failures:
        print("[report] failed notebooks:\n  " + "\n  ".join(failures))
    print(f"[report] total {total:.0f} s")
    return 1 if failures else 0


def _figure_check(nb, nfig: int) -> str | None:
    """A failure status when cells that show a figure ran but the page holds none (e.g. a non-inline backend)."""
    showing = sum(1 for c in nb.cells if c.cell_type == "code" and "plt.show()" in c.source)
    if showing and not nfig:
        return (f"FAILED: {showing} cell(s) call plt.show() but the notebook holds no figure "
                f"(the kernel's matplotlib backend is not {INLINE_BACKEND!r}?)")
    return None


def _write_summary(path: Path, rows, env: dict, params: dict, total: float) -> None:
    """reports/summary.json: what index.html shows, for scripts and tests (status, seconds, figures, parameters)."""
    import json

    path.write_text(json.dumps({
        "environment": env, "parameters": params, "total_s": round(total, 1),
        "notebooks": [{"stem": stem, "status": status, "seconds": round(seconds, 1), "figures": nfig,
                       "parameters": used} for stem, status, seconds, nfig, used in rows],
    }, indent=1, default=str) + "\n", encoding="utf-8")


def _fmt_param(used: dict, key: str) -> str:
    return html.escape(str(used[key])) if key in used else "&mdash;"


def _write_index(path: Path, rows, env: dict, params: dict, total: float) -> None:
    heads = "".join(f"<th>{k}</th>" for k in PARAMETER_NAMES)
    items = "\n".join(
        f"<tr><td><a href='{html.escape(stem)}.html'>{html.escape(stem)}</a></td><td>{html.escape(status)}</td>"
        f"<td>{seconds:.1f}</td><td>{nfig}</td>" + "".join(f"<td>{_fmt_param(used, k)}</td>" for k in PARAMETER_NAMES)
        + "</tr>" for stem, status, seconds, nfig, used in rows)
    envrows = "\n".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                        for k, v in {**env, **{f"parameter {k}": v for k, v in params.items()}}.items())
    path.write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>vaestudy study report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{padding:4px 10px;text-align:left}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f4f4f4}}</style></head>
<body><h1>vaestudy: VAE decode latency, tiling and temporal chunking</h1>
<p>Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in <strong id="total-seconds">{total:.0f} s</strong>
in total. Each notebook ran with its own parameter defaults, overridden by the report's parameters below; the table
shows the values each notebook ran with (&mdash;: the notebook has no such parameter). A notebook that cannot load
the weights it asks for says so on its page.</p>
<h2>Notebooks</h2><table id="notebooks"><tr><th>notebook</th><th>status</th><th>seconds</th><th>figures</th>{heads}</tr>
{items}</table>
<h2>Environment</h2><table id="environment">{envrows}</table></body></html>
""", encoding="utf-8")
