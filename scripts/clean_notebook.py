"""Commit notebooks clean: strip outputs and execution counts, keep outputs of ``# NBVAL_CHECK_OUTPUT`` cells.

Check cells keep their outputs and an execution count (nbval needs both to compare); every
other cell is committed with no output and no count.

usage: python scripts/clean_notebook.py NOTEBOOK [EXECUTED_COPY]
With an executed copy (e.g. from papermill in build/), the check cells take their outputs from it,
so nbval has something to compare against; without one, existing check outputs are kept.
"""

import sys

import nbformat


def clean(path: str, executed: str | None = None) -> None:
    nb = nbformat.read(path, as_version=4)
    ran = nbformat.read(executed, as_version=4) if executed else None
    ran_by_source = {c.source: c for c in ran.cells if c.cell_type == "code"} if ran else {}
    n_code = 0
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("widgets", None)
        if cell.cell_type != "code":
            continue
        n_code += 1
        cell.execution_count = None
        if "NBVAL_CHECK_OUTPUT" in cell.source:
            # nbval refuses a reference cell with outputs but no execution count ("Unrun reference cell")
            cell.execution_count = n_code
            src = ran_by_source.get(cell.source)
            outputs = src.outputs if src is not None else cell.outputs
            cell.outputs = [o for o in outputs if o.get("output_type") != "stream" or o.get("name") != "stderr"]
            for o in cell.outputs:
                if "execution_count" in o:
                    o["execution_count"] = None
        else:
            cell.outputs = []
    for key in ("widgets", "papermill"):
        nb.metadata.pop(key, None)
    nbformat.write(nb, path)


if __name__ == "__main__":
    clean(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
