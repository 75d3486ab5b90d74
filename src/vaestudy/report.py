"""The study report: execute every notebook (papermill) into build/, render HTML (nbconvert) into reports/.

A failing notebook does not stop the others: its error (notebook and cell) is printed, the
pages that did execute are still written, and the command exits non-zero.
"""

from __future__ import annotations

import base64
import html
import platform
import time
from pathlib import Path

import torch


def repo_root() -> Path:
    """The checkout holding notebooks/ (the current directory or one of its parents)."""
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "notebooks").is_dir() and (d / "pyproject.toml").exists():
            return d
    raise FileNotFoundError(f"no notebooks/ folder with a pyproject.toml above {here}; run from the vaestudy checkout")


def environment_summary(device: str | None) -> dict:
    import diffusers

    dev = device or "cpu"
    name = torch.cuda.get_device_name(torch.device(dev)) if dev.startswith("cuda") and torch.cuda.is_available() \
        else (platform.processor() or platform.machine())
    return {"device": dev, "device name": name, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads()}


def _export_figures(nb, stem: str, figures: Path) -> int:
    """Write every PNG/SVG output of an executed notebook into figures/ as STEM_NN.png|svg."""
    n = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data:
                n += 1
                (figures / f"{stem}_{n:02d}.png").write_bytes(base64.b64decode(data["image/png"]))
                if "image/svg+xml" in data:
                    svg = data["image/svg+xml"]
                    (figures / f"{stem}_{n:02d}.svg").write_text("".join(svg) if isinstance(svg, list) else svg)
    return n


def _failed_cell(exc) -> str:
    cell = getattr(exc, "exec_count", None)
    return f"cell [{cell}]" if cell is not None else "a cell"


def build_report(*, model: str | None = None, weights: str | None = None, device: str | None = None,
                 fast: bool = True, notebooks: list[str] | None = None, root: Path | None = None) -> int:
    """Execute notebooks with shared parameters and write reports/index.html; returns an exit code."""
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    root = root or repo_root()
    build, reports, figures = root / "build", root / "reports", root / "figures"
    for d in (build, reports, figures):
        d.mkdir(exist_ok=True)
    paths = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if notebooks:
        wanted = {Path(n).name for n in notebooks}
        unknown = wanted - {p.name for p in paths}
        if unknown:
            raise ValueError(f"notebooks={sorted(unknown)} not found; valid: {[p.name for p in paths]}")
        paths = [p for p in paths if p.name in wanted]
    params = {"FAST": fast}
    for key, val in (("MODEL", model), ("WEIGHTS", weights), ("DEVICE", device)):
        if val is not None:
            params[key] = val
    exporter = HTMLExporter()
    rows, failures = [], []
    for nb_path in paths:
        out_path = build / nb_path.name
        t0 = time.perf_counter()
        status = "ok"
        try:
            pm.execute_notebook(str(nb_path), str(out_path), parameters=params, kernel_name="python3",
                                cwd=str(nb_path.parent), progress_bar=False, log_output=False)
        except Exception as exc:  # papermill raises PapermillExecutionError with the cell
            status = f"FAILED in {_failed_cell(exc)}: {getattr(exc, 'ename', type(exc).__name__)}: " \
                     f"{getattr(exc, 'evalue', exc)}"
            failures.append(f"{nb_path.name}: {status}")
            print(f"[report] {nb_path.name} {status}")
        seconds = time.perf_counter() - t0
        if out_path.exists():
            nb = nbformat.read(out_path, as_version=4)
            body, _ = exporter.from_notebook_node(nb)
            (reports / f"{nb_path.stem}.html").write_text(body, encoding="utf-8")
            nfig = _export_figures(nb, nb_path.stem, figures)
        else:
            nfig = 0
        rows.append((nb_path.stem, status, seconds, nfig))
        print(f"[report] {nb_path.name}: {status} in {seconds:.1f} s, {nfig} figures")
    env = environment_summary(device)
    _write_index(reports / "index.html", rows, env, params)
    print(f"[report] wrote {reports / 'index.html'}")
    if failures:
        print("[report] failed notebooks:\n  " + "\n  ".join(failures))
        return 1
    return 0


def _write_index(path: Path, rows, env: dict, params: dict) -> None:
    items = "\n".join(
        f"<tr><td><a href='{html.escape(stem)}.html'>{html.escape(stem)}</a></td><td>{html.escape(status)}</td>"
        f"<td>{seconds:.1f}</td><td>{nfig}</td></tr>" for stem, status, seconds, nfig in rows)
    envrows = "\n".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                        for k, v in {**env, **{f"parameter {k}": v for k, v in params.items()}}.items())
    path.write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>vaestudy study report</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}td,th{{padding:4px 10px;text-align:left}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f4f4f4}}</style></head>
<body><h1>vaestudy: VAE decode latency, tiling and temporal chunking</h1>
<p>Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Each notebook was executed with the parameters below;
notebooks choose their own model and weights unless a parameter overrides them (each page says which it used).</p>
<h2>Notebooks</h2><table><tr><th>notebook</th><th>status</th><th>seconds</th><th>figures</th></tr>
{items}</table>
<h2>Environment</h2><table>{envrows}</table></body></html>
""", encoding="utf-8")
