"""The one environment summary every record and page carries: machine, CPU model, device, library versions."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from pathlib import Path

import torch

from vaestudy.devices import canonical_device


# ---------------------------------------------------------------------------------------------
# metadata
# ---------------------------------------------------------------------------------------------
def cpu_model_name() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    """The hardware's name: the CUDA device's, or the CPU model's."""
    dev = canonical_device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return cpu_model_name()


def environment(device: str = "cpu", dtype: str = "float32") -> dict:
    """Where and with what a measurement ran (no model needed)."""
    import diffusers
    import numpy

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "device": str(canonical_device(device)), "device_name": device_name(device), "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(), "python": platform.python_version(),
        "torch": torch.__version__, "diffusers": diffusers.__version__, "numpy": numpy.__version__,
        "dtype": dtype, "cuda": torch.version.cuda if canonical_device(device).type == "cuda" else None,
        "loadavg": load,
    }


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
