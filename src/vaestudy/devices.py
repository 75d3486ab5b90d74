"""The one device rule: every spelling of a device ("cuda", "cuda:0", "cpu", "cpu:0", a ``torch.device``) to one form.

Every check of where a model or a tensor lives goes through :func:`same_device`, so "cuda" and "cuda:0", or "cpu"
and "cpu:0", never disagree. CUDA facts (is it there, which index is current) are asked of ``torch.cuda`` at call
time, so tests can fake them.
"""

from __future__ import annotations

import torch

SUPPORTED = ("cpu", "cuda")


def parse_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``; ValueError naming the value when torch cannot parse it or it is unsupported."""
    if isinstance(device, torch.device):
        dev = device
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise ValueError(f"device={device!r} is not a torch device (valid: cpu, cpu:0, cuda, cuda:0, cuda:1, ...)") \
                from None
    if dev.type not in SUPPORTED:
        raise ValueError(f"device={device!r}: only {' and '.join(SUPPORTED)} are supported")
    return dev


def canonical_device(device: str | torch.device) -> torch.device:
    """One form per place: ``cpu`` (any CPU index) or ``cuda:N`` (``cuda`` alone is the current CUDA device)."""
    dev = parse_device(device)
    if dev.type == "cpu":
        return torch.device("cpu")
    index = dev.index if dev.index is not None else (torch.cuda.current_device() if torch.cuda.is_available() else 0)
    return torch.device("cuda", index)


def canonical_name(device: str | torch.device) -> str:
    """The canonical spelling, e.g. ``"cpu"`` or ``"cuda:0"`` (what records and tables print)."""
    return str(canonical_device(device))


def same_device(a: str | torch.device, b: str | torch.device) -> bool:
    """Whether two spellings name the same place ("cuda" vs "cuda:0", "cpu" vs "cpu:0" are the same)."""
    return canonical_device(a) == canonical_device(b)


def check_device(device: str | torch.device) -> torch.device:
    """The canonical device, after checking it exists on this machine (CUDA available, index in range)."""
    dev = canonical_device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} requested but CUDA is not available on this machine")
        n = torch.cuda.device_count()
        if dev.index >= n:
            raise ValueError(f"device={device!r}: this machine has {n} CUDA device(s) (cuda:0 … cuda:{n - 1})")
    return dev
