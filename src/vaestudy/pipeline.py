"""Streaming pipelines around a VAE decode: decode overlapped with generation, and encode on one
rank / decode on another, with bounded queues, backpressure, drops and a fixed-rate output.

* :class:`GeneratorStandIn` – a real torch module (residual Conv3d passes over a latent chunk) whose
  work per chunk is set by ``steps``; it stands in for a diffusion generator, it generates nothing.
* :func:`run_overlap` – generate chunk N while chunk N-1 decodes through ``open_stream(vae).step``
  (sequential, or overlapped with a decode thread and a bounded queue; on CUDA a second stream and
  events), optionally with a re-encode of decoded frames that the next chunk depends on.
* :func:`overlap_model` – the analytic periods (G + D sequential, max(G, D) overlapped) and what
  a dependency on decoded frames and shared compute leave of the gain.
* :class:`BoundedQueue`, :class:`FrameRing` – bounded window queues (``block`` = backpressure,
  ``drop`` = skip the incoming window, ``drop-oldest``) that log their depth over time, and the
  decoded-frame buffer a fixed-rate consumer drains.
* :func:`two_device_worker` – rank 0 captures at a fixed fps, encodes windows and ``dist.send``\\ s
  them; rank 1 receives, decodes and plays frames out at a fixed rate (run under torchrun, see
  :mod:`vaestudy.distributed`).

All times are seconds on ``CLOCK_MONOTONIC``: comparable between processes on one machine (one
kernel clock), not across machines (there a clock offset must be estimated, e.g. by a ping exchange).
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from vaestudy.decode.common import latent_channels, synchronize
from vaestudy.decode.streams import chunk_plan, open_stream
from vaestudy.models import family_of

POLICIES = ("block", "drop", "drop-oldest")


def now() -> float:
    """CLOCK_MONOTONIC in seconds (same clock in every process of one machine)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


# ---------------------------------------------------------------------------------------------
# 1. decode overlapped with generation
# ---------------------------------------------------------------------------------------------
class GeneratorStandIn(nn.Module):
    """Stand-in for a video generator: ``steps`` residual Conv3d passes over a latent chunk.

    It does real, configurable compute (each step is two 3x3x3 convolutions at ``width`` channels
    on the chunk's latent grid upsampled ``upscale`` times, like a transformer working on more
    tokens than the latent has pixels) and returns a latent chunk of the VAE's shape; an optional
    ``context`` (a re-encoded latent of earlier frames) is mixed in, which is how a dependency on
    decoded frames enters. Its output carries no meaning: it is not a trained model.
    """

    def __init__(self, channels: int = 16, width: int = 48, steps: int = 4, upscale: int = 4, seed: int = 0):
        super().__init__()
        if not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps={steps!r} must be an integer >= 0 (passes per chunk)")
        if not isinstance(upscale, int) or upscale < 1:
            raise ValueError(f"upscale={upscale!r} must be an integer >= 1")
        g = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            self.inp = nn.Conv3d(channels, width, 1)
            self.block = nn.Sequential(nn.Conv3d(width, width, 3, padding=1), nn.SiLU(),
                                       nn.Conv3d(width, width, 3, padding=1))
            self.out = nn.Conv3d(width, channels, 1)
        finally:
            torch.random.set_rng_state(g)
        self.steps, self.upscale = steps, upscale
        self.requires_grad_(False).eval()

    def forward(self, noise: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = self.inp(noise)
        if context is not None:
            x = x + self.inp(context.mean(dim=2, keepdim=True))  # broadcast over the chunk's frames
        if self.upscale > 1:
            x = F.interpolate(x, scale_factor=(1, self.upscale, self.upscale), mode="nearest")
        for _ in range(self.steps):
            x = x + 0.1 * torch.tanh(self.block(x))
        if self.upscale > 1:
            x = F.avg_pool3d(x, (1, self.upscale, self.upscale))
        z = self.out(x)
        return (z - z.mean()) / (z.std() + 1e-6)  # N(0, 1)-like, like the latents the VAE expects


def time_call(fn, device, repeats: int = 3) -> float:
    """Median wall seconds of ``fn()`` (device-synchronised)."""
    ts = []
    for _ in range(repeats):
        synchronize(device)
        t = time.perf_counter()
        fn()
        synchronize(device)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def steps_for_share(decode_s: float, step_s: float, share: float, base_s: float = 0.0) -> int:
    """Generator steps so that decode is ``share`` of a sequential chunk: D / (G + D) = share."""
    if not 0 < share < 1:
        raise ValueError(f"share={share} must be in (0, 1) (decode share of a sequential chunk)")
    if step_s <= 0:
        raise ValueError(f"step_s={step_s} must be > 0 seconds")
    g = decode_s * (1 - share) / share
    return max(0, round((g - base_s) / step_s))


@dataclass
class Span:
    """One piece of work on a lane of a timeline (seconds since the run started)."""

    lane: str  # "generate", "recompute" or "decode"
    chunk: int
    start: float
    end: float
    cpu: float = math.nan  # CPU seconds the thread used meanwhile (wall >> cpu: waiting for a core)


@dataclass
class OverlapRun:
    """Timeline and summary of one :func:`run_overlap`."""

    mode: str
    chunks: int
    spans: list[Span]
    total_s: float
    period_s: float  # median time between consecutive decode completions (steady-state)
    latency_s: list[float]  # per chunk: generation start -> decode end
    threads: dict[str, int]
    params: dict = field(default_factory=dict)

    def lane_seconds(self, lane: str) -> list[float]:
        return [s.end - s.start for s in self.spans if s.lane == lane]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["spans"] = [asdict(s) for s in self.spans]
        return d


def overlap_model(g: float, d: float, r: float = 0.0, *, critical: float = 1.0, every: int = 1,
                  contention: float = 0.0) -> dict:
    """Analytic chunk periods of generate (g) -> decode (d) [-> re-encode (r)] in seconds.

    ``every``: the next chunk depends on decoded frames every ``every`` chunks (0 = never);
    ``critical``: the share of the decode it then has to wait for (1 = the whole chunk, e.g. when
    the context is its last frames); ``contention``: how much hidden decode still slows the
    generator because both share the same compute (0 = separate devices, 1 = no spare capacity).
    Sequential = g + d + r; overlapped = max(d, g + r + crit + contention * (d - crit)).
    """
    for name, v in (("g", g), ("d", d), ("r", r)):
        if v < 0:
            raise ValueError(f"{name}={v} must be >= 0 seconds")
    if not 0 <= critical <= 1 or not 0 <= contention <= 1:
        raise ValueError(f"critical={critical} and contention={contention} must lie in [0, 1]")
    if not isinstance(every, int) or every < 0:
        raise ValueError(f"every={every!r} must be an integer >= 0 (0: no dependency)")
    rr = r / every if every else 0.0  # re-encode happens only when a dependency does
    crit = d * critical / every if every else 0.0
    seq = g + d + rr
    ovl = max(d, g + rr + crit + contention * (d - crit))
    return {"sequential_s": seq, "overlapped_s": ovl, "gain": seq / ovl - 1.0, "ideal_s": max(g + rr, d),
            "hidden_s": seq - ovl, "decode_share": d / seq}


def scope_ceiling(decode_share: float = 0.165, decode_plus_recompute: float = 0.33, *, critical: float = 1.0,
                  every: int = 1, contention: float = 0.0) -> dict:
    """:func:`overlap_model` in units of one chunk, from the shares 000_*.txt reports (decode 16.5%,
    decode + recompute 33% of chunk time)."""
    d = decode_share
    r = decode_plus_recompute - decode_share
    g = 1.0 - decode_plus_recompute
    return overlap_model(g, d, r * max(every, 1), critical=critical, every=every, contention=contention)


def _reencode(vae, frames: torch.Tensor) -> torch.Tensor:
    """The recompute step: encode the last decoded pixel frame back to a latent (context)."""
    return vae.encode(frames[:, :, -1:]).latent_dist.mode()


class ChunkHandoff:
    """How a generated chunk reaches the decode thread, and how its decode is waited for.

    CUDA: generation runs on the calling thread's current stream; an event recorded after each chunk is what the
    decode thread's own stream waits on (not the whole device), and a decode is finished when that thread's current
    stream is. CPU: kernels run synchronously, so there is nothing to record or wait on.
    """

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.stream = None

    def open_decode_stream(self) -> None:
        if self.cuda:
            self.stream = torch.cuda.Stream(self.device)

    def generated(self):
        """After a chunk is generated: the event the decode must wait on (None on CPU)."""
        if not self.cuda:
            return None
        ev = torch.cuda.Event()
        ev.record()
        ev.synchronize()  # the generate span ends when its kernels have run
        return ev

    @contextlib.contextmanager
    def on_decode_stream(self, ev):
        """Run the decode of a chunk on the decode stream, after the chunk's generation event."""
        if not self.cuda:
            yield
            return
        if self.stream is None:
            raise RuntimeError("open_decode_stream() was not called before on_decode_stream()")
        with torch.cuda.stream(self.stream):
            self.stream.wait_event(ev)
            yield

    def decoded(self) -> None:
        """Wait for this thread's current stream only, not the generator's."""
        if self.cuda:
            torch.cuda.current_stream(self.device).synchronize()


def run_overlap(vae, gen: GeneratorStandIn, *, chunks: int = 6, latent_frames: int = 1,
                latent_hw: tuple[int, int] = (4, 4), mode: str = "overlapped", queue_size: int = 1,
                threads: int | None = None, every: int = 0, seed: int = 0) -> OverlapRun:
    """Generate ``chunks`` latent chunks and stream-decode them, sequentially or overlapped.

    ``overlapped``: the calling thread generates, a decode thread pops a bounded queue of
    ``queue_size`` chunks (on CUDA it decodes on its own stream, waiting on an event recorded after
    each chunk was generated). ``threads``: torch intra-op threads each side sets for itself (None:
    leave the process setting, so both sides compete for the same cores). ``every`` > 0: chunk N
    re-encodes the last frame decoded from chunk N-1 as context every ``every`` chunks, so it must
    wait for that decode (the recompute dependency).
    """
    if mode not in ("sequential", "overlapped"):
        raise ValueError(f"mode={mode!r} must be 'sequential' or 'overlapped'")
    if not isinstance(chunks, int) or chunks < 2:
        raise ValueError(f"chunks={chunks!r} must be an integer >= 2")
    if not isinstance(queue_size, int) or queue_size < 1:
        raise ValueError(f"queue_size={queue_size!r} must be an integer >= 1 chunk")
    if not isinstance(every, int) or every < 0:
        raise ValueError(f"every={every!r} must be an integer >= 0 (0: no re-encode dependency)")
    p = next(vae.parameters())
    device = p.device
    cuda = device.type == "cuda"
    c = latent_channels(vae)
    gen = gen.to(device=device, dtype=p.dtype)
    gcpu = torch.Generator().manual_seed(seed)
    fam = family_of(vae)
    first = latent_frames
    if fam.cache == "conv_cache":  # CogVideoX: an odd first chunk, even chunks after it
        if latent_frames % 2:
            raise ValueError(f"latent_frames={latent_frames} must be even for {fam.name} (its chunks after the first)")
        first = latent_frames + 1
    noises = [torch.randn(1, c, first if i == 0 else latent_frames, *latent_hw, generator=gcpu).to(p)
              for i in range(chunks)]
    stream = open_stream(vae)
    handoff = ChunkHandoff(device)
    spans: list[Span] = []
    lock = threading.Lock()
    decoded: dict[int, torch.Tensor] = {}
    done = [threading.Event() for _ in range(chunks)]
    used_threads: dict[str, int] = {}
    errors: list[BaseException] = []
    t0 = now()

    def span(lane, i, a, b, cpu=math.nan):
        with lock:
            spans.append(Span(lane, i, a - t0, b - t0, cpu))

    def generate(i):
        ctx = None
        if every and i > 0 and i % every == 0:
            done[i - 1].wait()  # the dependency: decoded frames of chunk N-1
            a, ca = now(), time.thread_time()
            with torch.no_grad():
                ctx = _reencode(vae, decoded[i - 1])
            synchronize(device)
            span("recompute", i, a, now(), time.thread_time() - ca)
        a, ca = now(), time.thread_time()
        with torch.no_grad():
            z = gen(noises[i], ctx)
        if not cuda:
            span("generate", i, a, now(), time.thread_time() - ca)
        return z, a

    def decode(i, z):
        a, ca = now(), time.thread_time()
        with torch.no_grad():
            out = stream.step(z)
        handoff.decoded()
        decoded[i] = out[:, :, -1:]  # only the last frame is ever re-encoded
        span("decode", i, a, now(), time.thread_time() - ca)
        done[i].set()

    if threads is not None:
        torch.set_num_threads(threads)
    used_threads["generate"] = torch.get_num_threads()
    if mode == "sequential":
        used_threads["decode"] = used_threads["generate"]
        for i in range(chunks):
            z, a = generate(i)
            if cuda:
                synchronize(device)
                span("generate", i, a, now())
            decode(i, z)
    else:
        import queue as _q

        q: _q.Queue = _q.Queue(maxsize=queue_size)
        handoff.open_decode_stream()

        def decoder():
            try:
                if threads is not None:
                    torch.set_num_threads(threads)
                used_threads["decode"] = torch.get_num_threads()
                while True:
                    item = q.get()
                    if item is None:
                        return
                    i, z, ev = item
                    with handoff.on_decode_stream(ev):
                        decode(i, z)
            except BaseException as exc:  # surface in the caller, never hang it
                errors.append(exc)
                for e in done:
                    e.set()

        th = threading.Thread(target=decoder, name="vae-decode", daemon=True)
        th.start()
        for i in range(chunks):
            if errors:
                break
            z, a = generate(i)
            ev = handoff.generated()
            if cuda:
                span("generate", i, a, now())
            q.put((i, z, ev))  # blocks when the decoder is queue_size chunks behind
        q.put(None)
        th.join()
        if errors:
            raise RuntimeError(f"decode thread failed: {errors[0]!r}") from errors[0]
    total = now() - t0
    spans.sort(key=lambda s: (s.start, s.lane))
    dec_end = sorted(s.end for s in spans if s.lane == "decode")
    gaps = [b - a for a, b in zip(dec_end[1:], dec_end[2:])] or [dec_end[-1] - dec_end[0]]
    gen_start = {s.chunk: s.start for s in spans if s.lane in ("generate", "recompute")}
    gen_start.update({s.chunk: min(gen_start.get(s.chunk, math.inf), s.start) for s in spans if s.lane == "recompute"})
    latency = [s.end - gen_start[s.chunk] for s in sorted((s for s in spans if s.lane == "decode"), key=lambda s: s.chunk)]
    return OverlapRun(mode, chunks, spans, total, statistics.median(gaps), latency, used_threads,
                      {"latent_frames": latent_frames, "latent_hw": tuple(latent_hw), "queue_size": queue_size,
                       "threads": threads, "every": every, "gen_steps": gen.steps, "device": str(device),
                       "loadavg_1min": os.getloadavg()[0]})


def overlap_sweep(vae, shares=(0.2, 0.5, 0.8), *, chunks: int = 6, latent_hw=(4, 4), latent_frames: int = 1,
                  threads: int | None = 1, every: int = 0, repeats: int = 1, width: int = 48, seed: int = 0) -> list[dict]:
    """For each decode share D / (G + D): calibrate the generator stand-in, then run sequential and
    overlapped (interleaved, ``repeats`` times each) and compare the periods with the analytic bounds."""
    if threads is not None:
        torch.set_num_threads(threads)
    gen = GeneratorStandIn(latent_channels(vae), width=width, steps=1, seed=seed)
    costs = isolated_costs(vae, gen, latent_frames=latent_frames, latent_hw=latent_hw, seed=seed)
    rows = []
    for share in shares:
        gen.steps = steps_for_share(costs["decode_s"], costs["step_s"], share, costs["base_s"])
        runs = {"sequential": [], "overlapped": []}
        for _ in range(repeats):
            for mode in ("sequential", "overlapped"):
                runs[mode].append(run_overlap(vae, gen, chunks=chunks, latent_frames=latent_frames, latent_hw=latent_hw,
                                              mode=mode, threads=threads, every=every, seed=seed))
        seq = [s for r in runs["sequential"] for s in r.spans]
        g = statistics.median([s.end - s.start for s in seq if s.lane == "generate" and s.chunk > 0])
        d = statistics.median([s.end - s.start for s in seq if s.lane == "decode" and s.chunk > 0])
        rr = [s.end - s.start for s in seq if s.lane == "recompute"]
        r = statistics.median(rr) if rr else 0.0
        model = overlap_model(g, d, r * max(every, 1) if every else 0.0, every=every)
        p_seq = statistics.median([x.period_s for x in runs["sequential"]])
        p_ovl = statistics.median([x.period_s for x in runs["overlapped"]])
        ovl = [s for x in runs["overlapped"] for s in x.spans]
        slow = lambda lane: (statistics.median([s.end - s.start for s in ovl if s.lane == lane and s.chunk > 0])  # noqa: E731
                             / statistics.median([s.end - s.start for s in seq if s.lane == lane and s.chunk > 0]))
        rows.append({"target_share": share, "gen_steps": gen.steps, "G_s": g, "D_s": d, "R_s": r,
                     "share": d / (g + d), "seq_period_s": p_seq, "ovl_period_s": p_ovl,
                     "bound_seq_s": model["sequential_s"], "bound_ovl_s": model["overlapped_s"],
                     "gain": p_seq / p_ovl - 1, "bound_gain": model["gain"],
                     "gen_slowdown": slow("generate"), "decode_slowdown": slow("decode"),
                     "latency_seq_s": statistics.median([v for x in runs["sequential"] for v in x.latency_s[1:]]),
                     "latency_ovl_s": statistics.median([v for x in runs["overlapped"] for v in x.latency_s[1:]]),
                     "latency_bound_s": g + d + (r if every else 0.0),  # a chunk is never ready before G (+R) + D
                     "runs": {k: [x.as_dict() for x in v] for k, v in runs.items()}, "costs": costs,
                     "threads": threads, "every": every})
    return rows


def format_overlap_rows(rows: list[dict]) -> str:
    """Plain-text table of :func:`overlap_sweep` rows (times in ms; 'lat' = generation start -> decode end).

    ``target`` is the decode share D/(G+D) asked for; ``share`` the one measured in the run (the generator's step
    count is whole, and G and D are timed again beside each other, so the two differ).
    """
    head = (f"{'target':>6} {'share':>5} {'steps':>5} {'G ms':>7} {'D ms':>7} {'seq ms':>7} {'G+D ms':>7} {'ovl ms':>7} "
            f"{'max ms':>7} {'gain':>6} {'bound':>6} {'G slow':>6} {'D slow':>6} {'lat seq':>7} {'lat ovl':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['target_share']:>6.2f} {r['share']:>5.2f} {r['gen_steps']:>5d} {r['G_s'] * 1e3:>7.1f} {r['D_s'] * 1e3:>7.1f} "
                     f"{r['seq_period_s'] * 1e3:>7.1f} {r['bound_seq_s'] * 1e3:>7.1f} {r['ovl_period_s'] * 1e3:>7.1f} "
                     f"{r['bound_ovl_s'] * 1e3:>7.1f} {r['gain']:>6.1%} {r['bound_gain']:>6.1%} "
                     f"{r['gen_slowdown']:>6.2f} {r['decode_slowdown']:>6.2f} {r['latency_seq_s'] * 1e3:>7.1f} "
                     f"{r['latency_ovl_s'] * 1e3:>7.1f}")
    return "\n".join(lines)


def isolated_costs(vae, gen: GeneratorStandIn, *, latent_frames: int = 1, latent_hw=(4, 4), repeats: int = 3,
                   seed: int = 0) -> dict:
    """Median seconds of one generator chunk, one generator step, one streamed decode chunk (past the
    first) and one re-encode, each run alone: the G, D and R of :func:`overlap_model`."""
    p = next(vae.parameters())
    c = latent_channels(vae)
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(1, c, latent_frames, *latent_hw, generator=g).to(p)
    gen = gen.to(device=p.device, dtype=p.dtype)
    with torch.no_grad():
        stream = open_stream(vae)
        frames = stream.step(z)  # the first call is special (one latent frame -> one pixel frame)
        d = time_call(lambda: stream.step(z), p.device, repeats)
        gs = time_call(lambda: gen(z), p.device, repeats)
        steps, gen.steps = gen.steps, 8
        eight = time_call(lambda: gen(z), p.device, repeats)
        gen.steps = 0
        base = time_call(lambda: gen(z), p.device, repeats)
        gen.steps = steps
        r = time_call(lambda: _reencode(vae, frames), p.device, repeats)
    return {"generate_s": gs, "step_s": max((eight - base) / 8, 1e-6), "base_s": base, "decode_s": d, "reencode_s": r,
            "steps": steps}


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
        with self.q._cv:
            if not self.q._items:
                return None
            v = self.q._items.popleft()
            self.q._record()
            self.q._cv.notify_all()
            return v


# ---------------------------------------------------------------------------------------------
# 3. encode on rank 0, decode on rank 1 (torch.distributed point-to-point)
# ---------------------------------------------------------------------------------------------
@dataclass
class TwoDeviceConfig:
    """One run of :func:`two_device_worker` (sizes in pixels, times in seconds)."""

    model: str = "wan2.1"
    weights: str = "tiny"
    seed: int = 0
    clip: str = "carphone"  # vaestudy.data clip; "random" for seeded noise frames
    size: tuple[int, int] = (32, 32)
    window: int = 5  # frames per window (1 + 4k for Wan: each window is one independent clip)
    windows: int = 6
    fps: float = 8.0  # capture rate and output rate
    window_queue: int = 2  # assembled windows waiting for the encoder (capture never blocks: drops)
    send_queue: int = 2
    send_policy: str = "block"
    recv_queue: int = 2
    ring_frames: int = 0  # output ring capacity (0: 3 windows)
    prebuffer_s: float = 0.0  # playout delay after the first decoded frame
    threads: int = 1  # torch threads per rank
    fail_rank: int = -1  # test hook: this rank fails after setup
    fail_mode: str = "raise"  # "raise" (the process dies) or "hang" (it stops answering)
    encode_delay_s: float = 0.0  # test hook: extra sleep per encode (a slow encoder)
    decode_delay_s: float = 0.0  # test hook: extra sleep per window decode (a slow decoder)

    def validate(self) -> "TwoDeviceConfig":
        from vaestudy.models import get_family

        fam = get_family(self.model)
        fam.check_frames(self.window, "window")
        fam.latent_shape(self.window, *self.size)
        for name in ("windows", "window_queue", "send_queue", "recv_queue"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r} must be an integer >= 1")
        if self.send_policy not in POLICIES:
            raise ValueError(f"send_policy={self.send_policy!r} is unknown; valid: {', '.join(POLICIES)}")
        if not self.fps > 0:
            raise ValueError(f"fps={self.fps!r} must be > 0")
        if self.ring_frames < 0 or self.prebuffer_s < 0:
            raise ValueError(f"ring_frames={self.ring_frames} and prebuffer_s={self.prebuffer_s} must be >= 0")
        return self


def inject_failure(fail_rank: int, mode: str, timeout_s: float) -> None:
    """Test hook: on rank ``fail_rank`` raise, or hang for three timeouts (then raise)."""
    import torch.distributed as dist

    rank = dist.get_rank()
    if fail_rank != rank:
        return
    if mode not in ("raise", "hang"):
        raise ValueError(f"fail_mode={mode!r} must be 'raise' or 'hang'")
    if mode == "hang":
        time.sleep(3 * timeout_s)
    raise RuntimeError(f"injected failure on rank {rank} (fail_rank={fail_rank}, fail_mode={mode})")


def capture_frames(cfg: TwoDeviceConfig) -> torch.Tensor:
    """(3, frames, H, W) in [-1, 1] for the whole run: a real clip when available, else seeded noise."""
    n = cfg.window * cfg.windows
    if cfg.clip != "random":
        from vaestudy.data import clip_info, load_clip

        try:
            info = clip_info(cfg.clip)
            scale = max(cfg.size[0] / info["height"], cfg.size[1] / info["width"]) * 1.05
            stride = max(1, min(3, (info["frames"] - 1) // max(n - 1, 1)))
            if (n - 1) * stride + 1 <= info["frames"]:
                return load_clip(cfg.clip, n, cfg.size, stride=stride, scale=scale)
        except (FileNotFoundError, ValueError):
            pass
    g = torch.Generator().manual_seed(cfg.seed)
    return torch.rand(3, n, *cfg.size, generator=g) * 2 - 1


_STOP = -1


def two_device_worker(cfg: TwoDeviceConfig, *, timeout_s: float = 60.0) -> dict | None:
    """Rank 0 captures/encodes/sends, rank 1 receives/decodes/plays out; returns the merged record on
    rank 0 (None on rank 1). Needs an initialised 2-rank process group (see vaestudy.distributed)."""
    import torch.distributed as dist

    from vaestudy.models import load_vae

    cfg.validate()
    rank, world = dist.get_rank(), dist.get_world_size()
    if world != 2:
        raise ValueError(f"two-device needs exactly 2 ranks, got world size {world}")
    torch.set_num_threads(cfg.threads)
    dev = torch.device("cuda", rank) if dist.get_backend() == "nccl" else torch.device("cpu")
    vae = load_vae(cfg.model, cfg.weights, seed=cfg.seed, device=dev)
    fam = family_of(vae)
    lat_shape = (1, *fam.latent_shape(cfg.window, *cfg.size))
    dist.barrier()
    inject_failure(cfg.fail_rank, cfg.fail_mode, timeout_s)
    t_start = now()
    if rank == 0:
        part = _sender(cfg, vae, dev, lat_shape, timeout_s)
    else:
        part = _receiver(cfg, vae, dev, lat_shape, timeout_s)
    part["rank"] = rank
    part["t_start"] = t_start
    parts: list = [None, None]
    dist.all_gather_object(parts, part)
    if rank != 0:
        return None
    return summarize_two_device(cfg, parts[0], parts[1], lat_shape)


def _comm_device(dev: torch.device) -> torch.device:
    """Where point-to-point tensors must live: the GPU for NCCL, the CPU for gloo."""
    import torch.distributed as dist

    return dev if dist.get_backend() == "nccl" else torch.device("cpu")


def _sender(cfg: TwoDeviceConfig, vae, dev, lat_shape, timeout_s: float) -> dict:
    import torch.distributed as dist

    comm = _comm_device(dev)

    frames = capture_frames(cfg)
    wq = BoundedQueue(cfg.window_queue, "drop", "window buffer")
    sq = BoundedQueue(cfg.send_queue, cfg.send_policy, "send queue")
    capture_ts: list[float] = []
    encode_log: list[dict] = []
    send_log: list[dict] = []
    errors: list[BaseException] = []
    t0 = now() + 0.05

    def capture():  # a camera: one frame every 1/fps, never waits for the encoder
        try:
            stamps = []
            for i in range(frames.shape[1]):
                target = t0 + i / cfg.fps
                time.sleep(max(0.0, target - now()))
                stamps.append(now())
                capture_ts.append(stamps[-1])
                if len(stamps) == cfg.window:
                    wq.put(list(stamps), key=i // cfg.window)
                    stamps = []
            _force_stop(wq, timeout_s)
        except BaseException as exc:
            errors.append(exc)

    def sender():
        try:
            while True:
                key, item = sq.get(timeout=timeout_s)
                if key == _STOP:
                    dist.send(torch.tensor([_STOP, 0], dtype=torch.int64, device=comm), dst=1)
                    return
                z, stamps = item
                a = now()
                dist.send(torch.tensor([key, 0], dtype=torch.int64, device=comm), dst=1)
                dist.send(torch.tensor(stamps, dtype=torch.float64, device=comm), dst=1)
                dist.send(z.contiguous(), dst=1)
                send_log.append({"window": key, "start": a, "end": now(), "bytes": z.numel() * z.element_size()})
        except BaseException as exc:
            errors.append(exc)

    cap = threading.Thread(target=capture, name="capture", daemon=True)
    snd = threading.Thread(target=sender, name="sender", daemon=True)
    cap.start()
    snd.start()
    while True:
        key, item = wq.get(timeout=timeout_s)
        if key == _STOP:
            break
        stamps = item
        idx = slice(key * cfg.window, (key + 1) * cfg.window)
        x = frames[:, idx].unsqueeze(0).to(dev)
        a = now()
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mode()
        if cfg.encode_delay_s:
            time.sleep(cfg.encode_delay_s)
        synchronize(dev)
        b = now()
        encode_log.append({"window": key, "start": a, "end": b})
        sq.put((z.to(comm).float(), stamps), key=key, timeout=timeout_s)
        if errors:
            raise RuntimeError(f"sender thread failed: {errors[0]!r}") from errors[0]
    _force_stop(sq, timeout_s)
    snd.join(timeout_s)
    cap.join(timeout_s)
    if errors:
        raise RuntimeError(f"sender thread failed: {errors[0]!r}") from errors[0]
    return {"capture_ts": capture_ts, "encode": encode_log, "send": send_log, "queues": [wq.summary(), sq.summary()],
            "t0": t0}


def _force_stop(q: BoundedQueue, timeout_s: float | None = None) -> None:
    """Queue the end marker, waiting for room even under a drop policy (it must never be dropped)."""
    with q._cv:
        if not q._cv.wait_for(lambda: len(q._items) < q.capacity, timeout_s):
            raise TimeoutError(f"{q.name}: no room for the end marker in {timeout_s} s")
        q._items.append((_STOP, None))
        q._record()
        q._cv.notify_all()


def _receiver(cfg: TwoDeviceConfig, vae, dev, lat_shape, timeout_s: float) -> dict:
    import torch.distributed as dist

    comm = _comm_device(dev)

    rq = BoundedQueue(cfg.recv_queue, "block", "receive queue")
    ring_cap = cfg.ring_frames or 3 * cfg.window
    ring = FrameRing(ring_cap)
    recv_log: list[dict] = []
    decode_log: list[dict] = []
    shown: list[dict] = []
    underruns: list[float] = []
    errors: list[BaseException] = []
    finished = threading.Event()
    first_frame = threading.Event()
    fam = family_of(vae)

    def receiver():
        try:
            while True:
                head = torch.empty(2, dtype=torch.int64, device=comm)
                dist.recv(head, src=0)
                w = int(head[0])
                if w == _STOP:
                    rq.put(None, key=_STOP, timeout=timeout_s)
                    return
                stamps = torch.empty(cfg.window, dtype=torch.float64, device=comm)
                dist.recv(stamps, src=0)
                z = torch.empty(lat_shape, dtype=torch.float32, device=comm)
                dist.recv(z, src=0)
                recv_log.append({"window": w, "end": now()})
                rq.put((z, stamps.cpu().tolist()), key=w, timeout=timeout_s)
        except BaseException as exc:
            errors.append(exc)
            rq._items.append((_STOP, None))

    def consumer():  # the display: one frame every 1/fps once playback has started
        first_frame.wait()
        start = now() + cfg.prebuffer_s
        k = 0
        while True:
            target = start + k / cfg.fps
            time.sleep(max(0.0, target - now()))
            item = ring.pop()
            t = now()
            if item is None:
                if finished.is_set():
                    return
                underruns.append(t)
            else:
                item["shown"] = t
                shown.append(item)
            k += 1

    rcv = threading.Thread(target=receiver, name="receiver", daemon=True)
    con = threading.Thread(target=consumer, name="consumer", daemon=True)
    rcv.start()
    con.start()
    while True:
        key, item = rq.get(timeout=timeout_s)
        if key == _STOP:
            break
        z, stamps = item
        z = z.to(device=dev, dtype=next(vae.parameters()).dtype)
        stream = open_stream(vae)  # each window is an independent clip: fresh causal cache
        a = now()
        n = 0
        first_out = None
        with torch.no_grad():
            for lo, hi in chunk_plan(fam, int(z.shape[2]), 2 if fam.cache == "conv_cache" else 1):
                out = stream.step(z[:, :, lo:hi])
                synchronize(dev)
                if first_out is None:
                    first_out = now()
                for j in range(out.shape[2]):
                    ring.push({"window": key, "frame": n, "captured": stamps[n], "ready": now()}, timeout=timeout_s)
                    n += 1
                first_frame.set()
        if cfg.decode_delay_s:
            time.sleep(cfg.decode_delay_s)
        decode_log.append({"window": key, "start": a, "first_frame": first_out, "end": now()})
        if errors:
            break
    finished.set()
    first_frame.set()
    con.join(timeout_s + cfg.window * cfg.windows / cfg.fps)
    rcv.join(timeout_s)
    if errors:
        raise RuntimeError(f"receiver thread failed: {errors[0]!r}") from errors[0]
    return {"recv": recv_log, "decode": decode_log, "shown": shown, "underruns": underruns,
            "queues": [rq.summary(), ring.q.summary()], "ring_frames": ring_cap}


def summarize_two_device(cfg: TwoDeviceConfig, tx: dict, rx: dict, lat_shape) -> dict:
    """Merge both ranks' logs: per-window stage times, per-frame latency, queues, budget formula."""
    from vaestudy import compression as C

    t0 = tx["t0"]
    enc = {e["window"]: e for e in tx["encode"]}
    snd = {s["window"]: s for s in tx["send"]}
    rcv = {r["window"]: r for r in rx["recv"]}
    dec = {d["window"]: d for d in rx["decode"]}
    windows = []
    for w in sorted(dec):
        windows.append({
            "window": w,
            "filled": tx["capture_ts"][(w + 1) * cfg.window - 1] - t0,
            "encode_s": enc[w]["end"] - enc[w]["start"],
            "queued_send_s": snd[w]["start"] - enc[w]["end"],
            "transfer_s": rcv[w]["end"] - snd[w]["start"],
            "queued_recv_s": dec[w]["start"] - rcv[w]["end"],
            "decode_s": dec[w]["end"] - dec[w]["start"],
            "decode_first_s": dec[w]["first_frame"] - dec[w]["start"],
        })
    frames = [{"window": f["window"], "frame": f["frame"], "captured": f["captured"] - t0, "shown": f["shown"] - t0,
               "latency_s": f["shown"] - f["captured"], "waited_s": f["shown"] - f["ready"]} for f in rx["shown"]]
    med = lambda xs: statistics.median(xs) if xs else math.nan  # noqa: E731
    enc_s = med([w["encode_s"] for w in windows])
    dec_s = med([w["decode_s"] for w in windows])
    dec_first = med([w["decode_first_s"] for w in windows])
    xfer = med([w["transfer_s"] for w in windows])
    nbytes = C.window_bytes_continuous(lat_shape, "fp32")
    # compression.latency_budget models transfer as bytes over a link; we measured it, so it enters as
    # the round-trip term with nbytes=0 (the 003 formula: fill + encode + transfer + decode)
    budget = C.latency_budget(cfg.window, cfg.fps, enc_s, dec_s, nbytes=0.0, rtt_s=xfer, playout_s=cfg.prebuffer_s)
    first_frames = [f for f in frames if f["frame"] == 0]
    queues = {q["name"]: q for q in tx["queues"] + rx["queues"]}
    for q in queues.values():
        q["log"] = [(t - t0, d) for t, d in q["log"]]
    return {
        "config": asdict(cfg),
        "latent_shape": list(lat_shape),
        "window_bytes": nbytes,
        "windows": windows,
        "frames": frames,
        "queues": queues,
        "underruns": len(rx["underruns"]),
        "underrun_times": [t - t0 for t in rx["underruns"]],
        "captured_windows": len(tx["capture_ts"]) // cfg.window,
        "dropped_windows": sorted(queues["window buffer"]["dropped_ids"] + queues["send queue"]["dropped_ids"]),
        "shown_frames": len(frames),
        "median": {"encode_s": enc_s, "decode_s": dec_s, "decode_first_frame_s": dec_first, "transfer_s": xfer},
        "budget": budget.as_dict(),
        "budget_first_frame_decode": C.latency_budget(cfg.window, cfg.fps, enc_s, dec_first, nbytes=0.0, rtt_s=xfer,
                                                      playout_s=cfg.prebuffer_s).as_dict(),
        "latency_first_frame_s": [f["latency_s"] for f in first_frames],
        "latency_all_s": [f["latency_s"] for f in frames],
        "throughput_fps": C.pipeline_throughput_fps(cfg.window, [enc_s, xfer, dec_s]),
        "clock": "CLOCK_MONOTONIC, one machine",
    }


def contention_from(row: dict) -> float:
    """The contention factor an :func:`overlap_sweep` row implies: how much of the decode still
    lengthened the overlapped period, (T_ovl - max(G, D)) / min(G, D), clipped to [0, 1]
    (0 = perfectly hidden, 1 = nothing hidden)."""
    g, d = row["G_s"] + row.get("R_s", 0.0), row["D_s"]
    lo, hi = min(g, d), max(g, d)
    return float(min(1.0, max(0.0, (row["ovl_period_s"] - hi) / lo))) if lo > 0 else math.nan


def ceiling_grid(n: int = 21, **shares) -> dict:
    """Gain of :func:`scope_ceiling` over critical share x contention in [0, 1]^2 (n x n)."""
    xs = [i / (n - 1) for i in range(n)]
    gain = [[scope_ceiling(critical=c, contention=k, **shares)["gain"] for c in xs] for k in xs]
    return {"critical": xs, "contention": xs, "gain": gain}
