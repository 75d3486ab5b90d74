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

import os
import time
from pathlib import Path

from vaestudy.bench.environment import environment
from vaestudy.plots import FIGURE_FORMATS_ENV
from vaestudy.report.execute import CELL_TIMEOUT_S, INLINE_BACKEND, _execute_all, effective_parameters
from vaestudy.report.html import _export_figures, _figure_check, for_html, install_mathjax, offline_html_exporter
from vaestudy.report.index import _write_index, _write_summary
from vaestudy.report.paths import RESULTS_DIR_ENV, repo_root


def build_report(*, model: str | None = None, weights: str | None = None, device: str | None = None,
                 fast: bool = True, notebooks: list[str] | None = None, root: Path | None = None,
                 out_dir: Path | None = None, jobs: int = 1, cell_timeout_s: int | None = None) -> int:
    """Execute notebooks with shared parameters and write reports/index.html; returns an exit code.

    ``cell_timeout_s``: seconds one cell may run before its notebook is retried (default: 600 FAST, 3600 full).

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

    # papermill's kernels inherit the environment: plots.use_style reads the figure formats, ipykernel the backend
    kernel_env = {FIGURE_FORMATS_ENV: "png,svg", "MPLBACKEND": INLINE_BACKEND, RESULTS_DIR_ENV: str(out_dir / "results")}
    if jobs > 1 and "OMP_NUM_THREADS" not in os.environ:
        kernel_env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    saved = {k: os.environ.get(k) for k in kernel_env}
    os.environ.update(kernel_env)
    try:
        for nb_path, status, seconds in _execute_all(paths, build, params, CELL_TIMEOUT_S[bool(fast)] if cell_timeout_s is None else cell_timeout_s, jobs):
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
    env = environment(device or "cpu")  # the one environment summary, as every bench record carries it
    env["notebooks at once"] = jobs
    total = time.perf_counter() - t_start
    _write_index(reports / "index.html", rows, env, params, total, build=build, figures=figures)
    _write_summary(reports / "summary.json", rows, env, params, total, build=build, figures=figures)
    print(f"[report] wrote {reports / 'index.html'}")
    if failures:
        print("[report] failed notebooks:\n  " + "\n  ".join(failures))
    print(f"[report] total {total:.0f} s")
    return 1 if failures else 0
