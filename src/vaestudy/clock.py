"""The one clock every measurement reads: device-synchronised seconds, CUDA events on a CUDA device.

* :func:`now` — monotonic seconds, the same clock in every process of one machine (``CLOCK_MONOTONIC``),
  so spans recorded by several processes or threads line up on one timeline.
* :class:`Clock` — marks since :meth:`Clock.start`. On CUDA, marks are ``torch.cuda.Event`` pairs recorded
  on the device's stream and read after one synchronise (no host stall per mark); on CPU they are
  :func:`now` readings. :meth:`Clock.lap` synchronises and returns ``(seconds since last lap, seconds
  since start)`` on the host clock: what a consumer waiting for a chunk experiences.
* :func:`time_call` — median seconds of a call, synchronised around each repeat.

A foundation module: it imports nothing from the package, so every layer may use it.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def now() -> float:
    """Monotonic seconds (``CLOCK_MONOTONIC``), comparable across processes of one machine."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def synchronize(device: torch.device | str) -> None:
    """Wait for queued kernels so wall-clock time covers the work (no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Clock:
    """Seconds on one device: ``start()``, then ``mark()`` (no sync) and ``read()``, or ``lap()`` (synced)."""

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.cuda = self.device.type == "cuda"
        self.start()

    def start(self) -> None:
        """Synchronise and restart: marks and laps count from here."""
        synchronize(self.device)
        self.t0 = self.last = now()
        self.marks: list[float] = []
        self.events = [self._event()] if self.cuda else []

    def _event(self):
        e = torch.cuda.Event(enable_timing=True)
        e.record(torch.cuda.current_stream(self.device))
        return e

    def mark(self) -> None:
        """Record a point in time without waiting for the device (an event on CUDA)."""
        if self.cuda:
            self.events.append(self._event())
        else:
            self.marks.append(now() - self.t0)

    def read(self) -> list[float]:
        """Seconds from ``start()`` to each ``mark()`` (synchronises once on CUDA)."""
        if self.cuda:
            synchronize(self.device)
            return [self.events[0].elapsed_time(e) / 1000.0 for e in self.events[1:]]
        return list(self.marks)

    def lap(self) -> tuple[float, float]:
        """Synchronise; ``(seconds since the previous lap, seconds since start)``."""
        synchronize(self.device)
        t = now()
        dt, self.last = t - self.last, t
        return dt, t - self.t0


def time_call(fn: Callable[[], object], device: str | torch.device = "cpu", repeats: int = 3) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls, each synchronised before and after."""
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats={repeats!r} must be an integer >= 1")
    clock = Clock(device)
    laps = []
    for _ in range(repeats):
        clock.lap()
        fn()
        laps.append(clock.lap()[0])
    return statistics.median(laps)
