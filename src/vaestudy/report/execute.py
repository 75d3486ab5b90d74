"""Executing notebooks headlessly: papermill with the inline backend forced, kernels over IPC, widget comms
answered by nobody, a parameters cell read for the values a notebook really used."""

from __future__ import annotations

import ast
import functools
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path

# The kernels draw with matplotlib's inline backend whatever the caller's environment: ipykernel installs it only
# when $MPLBACKEND is unset, so a headless server's MPLBACKEND=Agg made every plt.show() draw nothing (pages with
# 0 figures) and left every figure open in the kernel.  build_report sets this for the kernels it starts.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"

# A cell that runs longer than this is stopped instead of hanging the report (a guard; the widget-cell hang it was
# added for is addressed at its root by the headless engine below). A notebook stopped that way is executed once
# more from the start (its row in the index says so); a second timeout fails it. FAST cells take seconds on CPU,
# full-size ones minutes.
CELL_TIMEOUT_S = {True: 600, False: 3600}


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
