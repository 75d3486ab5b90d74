"""The report's front page and its machine-readable summary."""

from __future__ import annotations

import html
import time
from pathlib import Path

from vaestudy.report.execute import PARAMETER_NAMES


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
