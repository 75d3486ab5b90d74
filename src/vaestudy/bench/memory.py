"""Peak memory of one decode: CUDA allocator statistics, or the kernel's resident-set high-water mark on CPU."""

from __future__ import annotations

import contextlib
import ctypes
import gc
from pathlib import Path
from typing import Callable

import torch

from vaestudy.devices import canonical_device


def _proc_status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) * 1024
    return out


_LIBC = None


def _malloc_trim() -> None:
    global _LIBC
    try:
        if _LIBC is None:
            _LIBC = ctypes.CDLL("libc.so.6")
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _ru_maxrss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


class PeakMemory:
    """Peak memory of the code run between ``start()`` and ``stop()`` (bytes); see module docstring."""

    def __init__(self, device: str | torch.device):
        self.device = canonical_device(device)
        self.method = "cuda-max-allocated" if self.device.type == "cuda" else "vmhwm-reset"

    def start(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            self.base_reserved = torch.cuda.memory_reserved(self.device)
            return
        _malloc_trim()
        if Path("/proc/self/clear_refs").exists() and _reset_hwm():
            self.method = "vmhwm-reset"
            self.base = _proc_status()["VmRSS"]
        else:  # valid only in a fresh process: ru_maxrss never goes down
            self.method = "ru_maxrss"
            self.base = _proc_status().get("VmRSS", _ru_maxrss_bytes()) if Path("/proc/self/status").exists() \
                else _ru_maxrss_bytes()

    def stop(self) -> dict:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return {"peak_bytes": torch.cuda.max_memory_allocated(self.device) - self.base,
                    "peak_reserved_bytes": torch.cuda.max_memory_reserved(self.device) - self.base_reserved}
        hwm = _proc_status()["VmHWM"] if self.method == "vmhwm-reset" else _ru_maxrss_bytes()
        return {"peak_bytes": max(0, hwm - self.base)}


def measure_peak(fn: Callable[[], object], device: str = "cpu") -> int:
    """Peak bytes allocated while ``fn()`` runs (its result is dropped before returning)."""
    probe = PeakMemory(device)
    probe.start()
    out = fn()
    del out
    return probe.stop()["peak_bytes"]


M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def _mmap_threshold(nbytes: int) -> None:
    """Fix glibc's mmap threshold: blocks >= nbytes get their own mapping, returned to the OS on free."""
    global _LIBC
    try:
        if _LIBC is None:
            _LIBC = ctypes.CDLL("libc.so.6")
        _LIBC.mallopt(M_MMAP_THRESHOLD, int(nbytes))
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def exact_rss():
    """While active, every block of 64 KiB or more is a fresh mapping, so the resident set follows live
    tensors (glibc otherwise recycles freed heap pages that were resident before the baseline and the
    high-water mark misses them). Afterwards the threshold is fixed at glibc's own ceiling, 32 MiB."""
    _mmap_threshold(64 * 1024)
    try:
        yield
    finally:
        _mmap_threshold(32 * 1024 * 1024)
