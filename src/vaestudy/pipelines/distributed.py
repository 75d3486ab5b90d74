"""Running the multi-rank pipelines: process-group setup with timeouts, a ``torchrun`` launcher,
and the worker entry point ``python -m vaestudy.distributed TASK CONFIG.json OUT.json``.

The backend is gloo on CPU and NCCL when every rank has a GPU. Every rendezvous, collective and
point-to-point call is bounded by ``timeout_s`` (default 60 s), and the launcher puts an overall
deadline on the whole run, so a rank that dies ends the run with an error naming it instead of
leaving the others blocked in ``recv``. torchrun itself stops the surviving ranks when one fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

import torch.distributed as dist

from vaestudy.pipelines import exact_split
from vaestudy.pipelines.split import SplitConfig, split_worker
from vaestudy.pipelines.two_device import TwoDeviceConfig, two_device_worker

TASKS = ("two-device", "split", "exact-split", "batch")


class DistributedRunError(RuntimeError):
    """A multi-rank run failed: which rank, and the tail of its error output."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init(timeout_s: float = 60.0, backend: str | None = None):
    """Initialise the default process group from torchrun's environment with a timeout on every
    collective; returns (rank, world size, backend)."""
    import torch

    if backend is None:
        backend = "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= int(os.environ.get("WORLD_SIZE", 1)) else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return dist.get_rank(), dist.get_world_size(), backend


def _config(task: str, cfg):

    if task == "batch":  # several runs in one process group: [{"task": ..., "config": {...}}, ...]
        if not isinstance(cfg, list) or not cfg:
            raise ValueError("a batch config must be a non-empty list of {'task': ..., 'config': {...}}")
        return [(item["task"], _config(item["task"], item.get("config", {}))) for item in cfg]
    if task not in ("two-device", "split", "exact-split"):
        raise ValueError(f"task={task!r} is unknown; valid: {', '.join(TASKS)}")
    cls = {"two-device": TwoDeviceConfig, "split": SplitConfig, "exact-split": exact_split.ExactSplitConfig}[task]
    fields = cls.__dataclass_fields__
    unknown = set(cfg) - set(fields)
    if unknown:
        raise ValueError(f"unknown {task} settings: {', '.join(sorted(unknown))}; valid: {', '.join(fields)}")
    vals = {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items()}
    return cls(**vals).validate()


def run_task(task: str, cfg: dict, timeout_s: float = 60.0) -> dict | None:
    """Run one task on an initialised group; rank 0 returns the record."""

    if task not in TASKS:
        raise ValueError(f"task={task!r} is unknown; valid: {', '.join(TASKS)}")
    c = _config(task, cfg)
    if task == "batch":
        return {"results": [run_task(t, cfg[i]["config"], timeout_s) for i, (t, _) in enumerate(c)]}
    if task == "two-device":
        return two_device_worker(c, timeout_s=timeout_s)
    if task == "exact-split":
        return exact_split.exact_split_worker(c, timeout_s=timeout_s)
    return split_worker(c, timeout_s=timeout_s)


def worker_main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of each rank under torchrun: TASK CONFIG_JSON OUT_JSON [TIMEOUT_S]."""

    argv = sys.argv[1:] if argv is None else argv
    task, cfg_path, out_path = argv[:3]
    timeout_s = float(argv[3]) if len(argv) > 3 else 60.0
    cfg = json.loads(Path(cfg_path).read_text())
    rank, world, backend = init(timeout_s)
    try:
        _run_and_write(task, cfg, timeout_s, out_path, rank, world, backend)
    except BaseException:
        sys.stderr.write(f"[vaestudy rank {rank}] {task} failed:\n{traceback.format_exc()}")
        sys.stderr.flush()
        os._exit(17)  # do not wait in destroy_process_group for peers that will never come
    dist.destroy_process_group()
    _exit_after_teardown()


def _exit_after_teardown() -> NoReturn:
    """End a rank whose work is done and whose process group is destroyed, skipping interpreter finalisation.

    Once in a while (once in a full CI run here, not in 12 runs of the test alone) a gloo rank died of SIGABRT
    ("terminate called without an active exception", what a C++ thread still joinable at destruction gives).
    Our reading: a teardown race of the backend's threads at interpreter finalisation, of the kind
    pytorch/pytorch#179291 discusses.  At this point the rank has passed the final barrier and destroyed its group,
    so nothing is lost by leaving without finalisation.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _json_default(o):
    import torch

    if isinstance(o, torch.Tensor):
        return o.tolist()
    if hasattr(o, "__dataclass_fields__"):
        return asdict(o)
    return str(o)


def torchrun_command(task: str, cfg_path: str, out_path: str, *, nproc: int = 2, timeout_s: float = 60.0,
                     port: int | None = None) -> list[str]:
    """The ``python -m torch.distributed.run`` command line for one task on this machine."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(nproc),
            "--master_addr", "127.0.0.1", "--master_port", str(port or free_port()), "--max_restarts", "0",
            "-m", "vaestudy.pipelines.distributed", task, cfg_path, out_path, str(timeout_s)]


def launch(task: str, cfg: dict, *, nproc: int = 2, timeout_s: float = 60.0, deadline_s: float = 600.0,
           workdir: str | os.PathLike | None = None, threads_env: int = 1) -> dict:
    """Run ``task`` on ``nproc`` local ranks with torchrun and return rank 0's record (a dict).

    Raises :class:`DistributedRunError` naming the failed rank (with its error tail) when a rank
    fails, and when the whole run exceeds ``deadline_s`` seconds (then every rank is killed).
    """
    import tempfile

    if task not in TASKS:
        raise ValueError(f"task={task!r} is unknown; valid: {', '.join(TASKS)}")
    _config(task, cfg)  # validate before starting processes
    own = workdir is None  # a folder we made is removed afterwards, on success and on failure
    tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"vaestudy-{task}-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        return _launch_in(tmp, task, cfg, nproc=nproc, timeout_s=timeout_s, deadline_s=deadline_s,
                          threads_env=threads_env, keep=not own)
    finally:
        if own:
            shutil.rmtree(tmp, ignore_errors=True)


def _launch_in(tmp: Path, task: str, cfg: dict, *, nproc: int, timeout_s: float, deadline_s: float,
               threads_env: int, keep: bool) -> dict:
    cfg_path, out_path = tmp / "config.json", tmp / "result.json"
    cfg_path.write_text(json.dumps(cfg))
    if out_path.exists():
        out_path.unlink()
    env = dict(os.environ, OMP_NUM_THREADS=str(threads_env), HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"),
               PYTHONUNBUFFERED="1", TORCHELASTIC_ERROR_FILE=str(tmp / "error.json"),
               TMPDIR=str(tmp))  # torchrun's own torchelastic_* folders go in here too, and leave with it
    cmd = torchrun_command(task, str(cfg_path), str(out_path), nproc=nproc, timeout_s=timeout_s)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        import signal

        os.killpg(proc.pid, signal.SIGKILL)  # the whole session we started, nothing else
        log, _ = proc.communicate()
        raise DistributedRunError(f"{task}: no result within deadline_s={deadline_s} s; killed all ranks. "
                                  f"Last output:\n{_tail(log)}") from None
    (tmp / "log.txt").write_text(log)
    if proc.returncode != 0 or not out_path.exists():
        who = blame(_rank_error_lines(log), nproc, timeout_s)
        where = f"\nfull log: {tmp / 'log.txt'}" if keep else f"\nlast output:\n{_tail(log, 15)}"
        raise DistributedRunError(f"{task} failed on {who} (torchrun exit code {proc.returncode}): "
                                  f"{_rank_errors(log) or _tail(log)}{where}")
    rec = json.loads(out_path.read_text())
    if keep:
        rec["workdir"] = str(tmp)
    return rec



def _run_and_write(task: str, cfg: dict, timeout_s: float, out_path, rank: int, world: int, backend: str) -> None:
    """Run a task on every rank; rank 0 writes the result (tagged with backend and world size) as JSON."""

    rec = run_task(task, cfg, timeout_s)
    if rank == 0:
        for r in rec.get("results", [rec]):
            r["backend"], r["world"] = backend, world
        Path(out_path).write_text(json.dumps(rec, default=_json_default))
    dist.barrier()

def _local_entry(rank: int, world: int, port: int, task: str, cfg: dict, out_path: str, timeout_s: float) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))

    rank, world, backend = init(timeout_s)
    try:
        _run_and_write(task, cfg, timeout_s, out_path, rank, world, backend)
    except BaseException:
        # written before this rank tears its group down, so before any peer can fail *because of* this failure
        Path(f"{out_path}.rank{rank}.error").write_text(f"{time.monotonic_ns()}\n{traceback.format_exc()}")
        raise
    finally:
        dist.destroy_process_group()
    _exit_after_teardown()  # only after success: a failure above propagates to torch.multiprocessing as before


def launch_local(task: str, cfg: dict, *, nproc: int = 2, timeout_s: float = 60.0, start_method: str = "fork") -> dict:
    """Like :func:`launch` without torchrun: ``torch.multiprocessing`` processes on a free port.
    ``fork`` reuses the parent's imports (seconds instead of tens of seconds per rank on a loaded
    machine), which is what the tests use; a failing rank raises ``ProcessRaisedException``."""
    import tempfile


    _config(task, cfg)
    out = Path(tempfile.mkdtemp(prefix=f"vaestudy-{task}-")) / "result.json"
    saved_tempdir = tempfile.tempdir
    tempfile.tempdir = str(out.parent)  # torch.multiprocessing's pytorch-errorfile-*.pickle land here, and leave with it
    try:
        return _start_local(out, task, cfg, nproc=nproc, timeout_s=timeout_s, start_method=start_method)
    finally:
        tempfile.tempdir = saved_tempdir
        shutil.rmtree(out.parent, ignore_errors=True)


def _start_local(out: Path, task: str, cfg: dict, *, nproc: int, timeout_s: float, start_method: str) -> dict:
    import torch.multiprocessing as mp

    try:
        mp.start_processes(_local_entry, args=(nproc, free_port(), task, cfg, str(out), timeout_s), nprocs=nproc,
                           join=True, start_method=start_method)
    except mp.ProcessRaisedException as exc:
        # torch.multiprocessing reports whichever failed rank it notices first; when one rank fails, its peers fail
        # next (connection reset), so report the rank that failed first: the root cause
        errors = sorted((int(f.read_text().split("\n", 1)[0]), f) for f in out.parent.glob("result.json.rank*.error"))
        failed = {int(f.name.split(".rank")[1].split(".")[0]) for _, f in errors}
        silent = sorted(set(range(nproc)) - failed)
        if silent and _is_timeout(str(exc)):
            # a rank that timed out waited on a peer: the peers that neither failed nor finished stopped answering
            raise mp.ProcessRaisedException(
                f"{exc}\n-- rank(s) {', '.join(map(str, silent))} stopped answering: no error and no result within "
                f"timeout_s={timeout_s} s (rank {exc.error_index} timed out waiting for them)",
                exc.error_index, exc.error_pid) from exc
        if not errors:
            raise
        rank = int(errors[0][1].name.split(".rank")[1].split(".")[0])
        if rank == exc.error_index:
            raise
        trace = errors[0][1].read_text().split("\n", 1)[1]
        raise mp.ProcessRaisedException(f"\n\n-- Process {rank} terminated with the following error:\n{trace}",
                                        rank, None) from exc
    return json.loads(out.read_text())


def _is_timeout(text: str) -> bool:
    """Whether a rank's traceback ends in a timed-out wait (its last line is the exception: gloo's "Timed out
    waiting ... for recv", or the send queue's "timed out")."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return bool(lines) and "timed out" in lines[-1].lower()


def _rank_error_lines(log: str) -> dict[int, str]:
    """{rank: the exception line of its traceback} for every rank that printed a failure marker in ``log``."""
    out, rank = {}, None
    for line in (log or "").splitlines():
        if line.startswith("[vaestudy rank "):
            rank = int(line.split("rank ")[1].split("]")[0])
        elif rank is not None and line and not line.startswith((" ", "Traceback", "During handling", "The above")):
            out[rank] = line
            rank = None
    return out


def _rank_errors(log: str) -> str:
    """The exception line of each failed rank's traceback (what the worker printed after its marker)."""
    return "\n".join(f"[vaestudy rank {r}] {e}" for r, e in sorted(_rank_error_lines(log).items()))


def blame(errors: dict[int, str], nproc: int, timeout_s: float) -> str:
    """Which rank(s) caused a failed run, from each failed rank's exception line.

    A rank whose error is neither a timeout nor a lost peer (gloo's "Connection closed by peer", a reset or broken
    pipe) failed on its own: it is the cause, and the ranks that only lost it are not named. When every error is a
    timeout or a lost peer, the ranks that neither failed nor finished died or stopped answering: they are named,
    and the ranks that waited for them or lost them.
    """
    waited = sorted(r for r, e in errors.items() if _is_timeout(e))
    lost = sorted(r for r, e in errors.items() if _is_peer_lost(e))
    own = sorted(set(errors) - set(waited) - set(lost))
    if own:
        return f"rank {', '.join(map(str, own))}"
    silent = sorted(set(range(nproc)) - set(errors))
    if silent and (waited or lost):
        why = []
        if lost:
            why.append(f"rank {', '.join(map(str, lost))} lost its connection to it")
        if waited:
            why.append(f"rank {', '.join(map(str, waited))} timed out waiting")
        what = "died" if lost else "stopped answering"
        return (f"rank {', '.join(map(str, silent))} ({what}: no error and no result within "
                f"timeout_s={timeout_s} s; {'; '.join(why)})")
    named = sorted(set(waited) | set(lost))
    return f"rank {', '.join(map(str, named))}" if named else "a rank"


def _is_peer_lost(text: str) -> bool:
    """Whether a rank's traceback ends in a lost connection to a peer (gloo's "Connection closed by peer", "Connection
    reset by peer", a broken pipe): the symptom of a peer that died, not a failure of this rank."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    last = lines[-1].lower() if lines else ""
    return any(k in last for k in ("connection closed by peer", "connection reset by peer", "broken pipe"))


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join((text or "").splitlines()[-lines:])


if __name__ == "__main__":
    worker_main()
