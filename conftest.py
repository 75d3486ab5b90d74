"""Repository-wide pytest hooks (loaded for tests/ and notebooks/ alike)."""

import pytest


def pytest_collection_modifyitems(config, items):
    """Give nbval the stored reference outputs of ``# NBVAL_CHECK_OUTPUT`` cells.

    Notebooks are committed clean (scripts/clean_notebook.py); their check cells' reference outputs
    live in notebooks/nbval_reference/<stem>.json.  nbval compares a cell only when it carries outputs
    and an execution count, so both are set here.  A check cell without a reference is an error,
    never a silently skipped comparison.
    """
    import json
    from pathlib import Path

    import nbformat

    refs = {}
    for item in items:
        if type(item).__name__ != "IPyNbCell" or "NBVAL_CHECK_OUTPUT" not in item.cell.source:
            continue
        nb_path = Path(str(item.fspath))
        if nb_path not in refs:
            ref_file = nb_path.parent / "nbval_reference" / f"{nb_path.stem}.json"
            refs[nb_path] = json.loads(ref_file.read_text()) if ref_file.exists() else {}
        outputs = refs[nb_path].get(item.cell.source)
        if outputs is None:
            raise pytest.UsageError(f"{nb_path.name}: a NBVAL_CHECK_OUTPUT cell has no reference output in "
                                    f"nbval_reference/{nb_path.stem}.json; run scripts/clean_notebook.py on an "
                                    f"executed copy:\n{item.cell.source[:200]}")
        item.cell.outputs = [nbformat.from_dict(o) for o in outputs]
        item.cell.execution_count = 1
