"""The one table formatter: rows of dicts as aligned plain text or as Markdown.

A column is a row key (its header is the key) or a :class:`Col` (header, key or function of the row, format
spec). Cells: ``None`` prints as ``-``, inf and nan as ``inf``/``nan``, floats with the column's spec or
``digits`` decimals; numbers are right-aligned and text left-aligned in plain text.

A foundation module: it imports nothing from the package, so every layer may use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Col:
    """One column: ``header``, the row ``key`` (or a function of the row) and an optional format ``spec``."""

    header: str
    key: str | Callable[[dict], Any] | None = None
    spec: str = ""

    def value(self, row: dict) -> Any:
        key = self.header if self.key is None else self.key
        return key(row) if callable(key) else row.get(key)


def _cell(v: Any, spec: str, digits: int | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and (math.isinf(v) or math.isnan(v)):
        return "inf" if math.isinf(v) else "nan"
    if spec:
        return format(v, spec)
    if isinstance(v, float) and digits is not None:
        return f"{v:.{digits}f}"
    return str(v)


def format_table(rows: Sequence[dict], columns: Sequence[str | Col] | None = None, digits: int | None = 2, *,
                 markdown: bool = False) -> str:
    """``rows`` as a table of ``columns`` (default: the first row's keys); Markdown with ``markdown``.

    ``digits``: decimals of floats without a column spec (``None``: as ``str`` gives them)."""
    if not rows and not columns:
        return ""
    cols = [c if isinstance(c, Col) else Col(str(c)) for c in (columns or list(rows[0]))]
    values = [[c.value(r) for c in cols] for r in rows]
    cells = [[_cell(v, c.spec, digits) for v, c in zip(vals, cols)] for vals in values]
    if markdown:
        esc = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
        head = "| " + " | ".join(esc(c.header) for c in cols) + " |\n|" + "---|" * len(cols)
        return "\n".join([head] + ["| " + " | ".join(esc(s) for s in row) + " |" for row in cells])
    numeric = [all(isinstance(v, (int, float)) or v is None for v in (vals[i] for vals in values)) and values
               for i in range(len(cols))]
    widths = [max([len(c.header)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]

    def line(items):
        return "  ".join(s.rjust(w) if num else s.ljust(w) for s, w, num in zip(items, widths, numeric)).rstrip()

    return "\n".join([line([c.header for c in cols]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells])
