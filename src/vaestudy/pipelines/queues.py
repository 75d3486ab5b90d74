"""Bounded hand-off between pipeline stages: a blocking queue that records its depth, and a frame ring."""

from __future__ import annotations

import collections
import threading
from typing import Any

from vaestudy.pipelines.overlap import POLICIES, now


# ---------------------------------------------------------------------------------------------
# 2. bounded queues and the output ring buffer
# ---------------------------------------------------------------------------------------------
class BoundedQueue:
    """A FIFO of at most ``capacity`` items with a full-queue policy, logging (time, depth).

    ``block``: ``put`` waits for room (backpressure on the producer); ``drop``: the incoming item
    is discarded and counted; ``drop-oldest``: the oldest queued item is discarded to make room.
    """

    def __init__(self, capacity: int, policy: str = "block", name: str = "queue", clock=now):
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"capacity={capacity!r} must be an integer >= 1")
        if policy not in POLICIES:
            raise ValueError(f"policy={policy!r} is unknown; valid: {', '.join(POLICIES)}")
        self.capacity, self.policy, self.name, self.clock = capacity, policy, name, clock
        self._items: collections.deque = collections.deque()
        self._cv = threading.Condition()
        self.dropped: list[Any] = []  # ids (or items) of what the policy discarded
        self.log: list[tuple[float, int]] = []
        self.max_depth = 0
        self.blocked_s = 0.0  # producer time spent waiting for room (backpressure)
        self.closed = False

    def _record(self):
        d = len(self._items)
        self.max_depth = max(self.max_depth, d)
        self.log.append((self.clock(), d))

    def put(self, item, key=None, timeout: float | None = None) -> bool:
        """Add ``item``; returns False when the policy dropped it (``key`` is what gets counted)."""
        with self._cv:
            if len(self._items) >= self.capacity:
                if self.policy == "drop":
                    self.dropped.append(key if key is not None else item)
                    self._record()
                    return False
                if self.policy == "drop-oldest":
                    old = self._items.popleft()
                    self.dropped.append(old[0] if key is not None else old)
                else:
                    t = self.clock()
                    if not self._cv.wait_for(lambda: len(self._items) < self.capacity, timeout):
                        raise TimeoutError(f"{self.name}: no room for {timeout} s (capacity {self.capacity})")
                    self.blocked_s += self.clock() - t
            self._items.append((key, item) if key is not None else item)
            self._record()
            self._cv.notify_all()
            return True

    def get(self, timeout: float | None = None):
        with self._cv:
            if not self._cv.wait_for(lambda: self._items, timeout):
                raise TimeoutError(f"{self.name}: empty for {timeout} s")
            v = self._items.popleft()
            self._record()
            self._cv.notify_all()
        return v

    def get_nowait(self):
        """The oldest item, or None when the queue is empty (never waits)."""
        with self._cv:
            if not self._items:
                return None
            v = self._items.popleft()
            self._record()
            self._cv.notify_all()
        return v

    def put_marker(self, item, timeout: float | None = None, *, wait_for_room: bool = True) -> None:
        """Queue ``item`` whatever the policy (an end marker must never be dropped). It waits for room (TimeoutError
        after ``timeout`` s); with ``wait_for_room=False`` — an error path that must not block — it goes over
        capacity instead. Consumers waiting in ``get`` are woken either way."""
        with self._cv:
            if wait_for_room and not self._cv.wait_for(lambda: len(self._items) < self.capacity, timeout):
                raise TimeoutError(f"{self.name}: no room for the end marker in {timeout} s")
            self._items.append(item)
            self._record()
            self._cv.notify_all()

    def __len__(self) -> int:
        return len(self._items)

    def summary(self) -> dict:
        return {"name": self.name, "capacity": self.capacity, "policy": self.policy, "max_depth": self.max_depth,
                "dropped": len(self.dropped), "dropped_ids": list(self.dropped), "blocked_s": self.blocked_s,
                "log": self.log}


class FrameRing:
    """Decoded frames waiting for a fixed-rate consumer: at most ``capacity`` frames; a full ring
    blocks the decoder (backpressure towards the receive queue)."""

    def __init__(self, capacity: int, clock=now):
        self.q = BoundedQueue(capacity, "block", "output ring", clock)

    def push(self, frame_meta: dict, timeout: float | None = None) -> None:
        self.q.put(frame_meta, timeout=timeout)

    def pop(self):
        """A frame if one is ready, else None (an underrun when the consumer needed one)."""
        return self.q.get_nowait()
