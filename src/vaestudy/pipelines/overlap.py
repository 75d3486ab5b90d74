"""Decode overlapped with generation on one device: a generator stand-in, chunk hand-off, measured timelines and the overlap model."""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from vaestudy.clock import now, synchronize, time_call
from vaestudy.decode.common import latent_channels
from vaestudy.pipelines.streaming import (
    check_stream_chunk,
    encodable_frames,
    encode_clip,
    first_chunk,
    open_pipeline_stream,
    stream_chunk,
)
from vaestudy.registry.families import family_of
from vaestudy.tables import Col, format_table

POLICIES = ("block", "drop", "drop-oldest")


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

    @classmethod
    def for_vae(cls, vae, **kwargs) -> GeneratorStandIn:
        """A stand-in whose chunks have the latent channels of ``vae`` (other arguments as the constructor's)."""
        return cls(latent_channels(vae), **kwargs)

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


def scope_ceiling(decode_share: float, decode_plus_recompute: float, *, critical: float = 1.0,
                  every: int = 1, contention: float = 0.0) -> dict:
    """:func:`overlap_model` in units of one chunk, from a pipeline's shares of a chunk's wall time: decode, and
    decode + recompute (000's figures: ``vaestudy.guide.sources.seed_shares()``)."""
    for name, v in (("decode_share", decode_share), ("decode_plus_recompute", decode_plus_recompute)):
        if not 0.0 <= v < 1.0:
            raise ValueError(f"{name}={v!r} must be a share of a chunk's time in [0, 1)")
    if decode_plus_recompute < decode_share:
        raise ValueError(f"decode_plus_recompute={decode_plus_recompute!r} must be >= decode_share={decode_share!r}")
    d = decode_share
    r = decode_plus_recompute - decode_share
    g = 1.0 - decode_plus_recompute
    return overlap_model(g, d, r * max(every, 1), critical=critical, every=every, contention=contention)


def _reencode(vae, frames: torch.Tensor) -> torch.Tensor:
    """The recompute step: encode the last decoded pixel frame back to a latent (context), held for the shortest
    multi-frame clip the family encodes (``streaming.context_frames``)."""
    return encode_clip(vae, encodable_frames(family_of(vae), frames))


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


def run_overlap(vae, gen: GeneratorStandIn, *, chunks: int = 6, latent_frames: int | None = None,
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
    latent_frames = stream_chunk(fam) if latent_frames is None else latent_frames
    first = first_chunk_frames(fam, latent_frames)
    noises = [torch.randn(1, c, first if i == 0 else latent_frames, *latent_hw, generator=gcpu).to(p)
              for i in range(chunks)]
    stream = open_pipeline_stream(vae)  # the decoder's cache, or overlapping windows without one
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


def overlap_sweep(vae, shares=(0.2, 0.5, 0.8), *, chunks: int = 6, latent_hw=(4, 4), latent_frames: int | None = None,
                  threads: int | None = 1, every: int = 0, repeats: int = 1, width: int = 48, seed: int = 0) -> list[dict]:
    """For each decode share D / (G + D): calibrate the generator stand-in, then run sequential and
    overlapped (interleaved, ``repeats`` times each) and compare the periods with the analytic bounds."""
    if threads is not None:
        torch.set_num_threads(threads)
    gen = GeneratorStandIn.for_vae(vae, width=width, steps=1, seed=seed)
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
    ms = lambda header, key: Col(header, lambda r: r[key] * 1e3, ".1f")  # noqa: E731
    cols = [Col("target", "target_share", ".2f"), Col("share", "share", ".2f"), Col("steps", "gen_steps"),
            ms("G ms", "G_s"), ms("D ms", "D_s"), ms("seq ms", "seq_period_s"), ms("G+D ms", "bound_seq_s"),
            ms("ovl ms", "ovl_period_s"), ms("max ms", "bound_ovl_s"), Col("gain", "gain", ".1%"),
            Col("bound", "bound_gain", ".1%"), Col("G slow", "gen_slowdown", ".2f"),
            Col("D slow", "decode_slowdown", ".2f"), ms("lat seq", "latency_seq_s"), ms("lat ovl", "latency_ovl_s")]
    return format_table(rows, cols)


def first_chunk_frames(fam, latent_frames: int) -> int:
    """Latent frames of a stream's first chunk when every later chunk holds ``latent_frames`` (validated): the
    whole latent must stay a valid length (base + step*k), so it is the shortest valid length >= ``latent_frames``
    (:func:`vaestudy.pipelines.streaming.first_chunk`)."""
    check_stream_chunk(fam, latent_frames, name="latent_frames")
    return first_chunk(fam, latent_frames)


def isolated_costs(vae, gen: GeneratorStandIn, *, latent_frames: int | None = None, latent_hw=(4, 4), repeats: int = 3,
                   seed: int = 0) -> dict:
    """Median seconds of one generator chunk, one generator step, one streamed decode chunk (past the
    first) and one re-encode, each run alone: the G, D and R of :func:`overlap_model`."""
    p = next(vae.parameters())
    c = latent_channels(vae)
    fam = family_of(vae)
    latent_frames = stream_chunk(fam) if latent_frames is None else latent_frames
    g = torch.Generator().manual_seed(seed)
    z0 = torch.randn(1, c, first_chunk_frames(fam, latent_frames), *latent_hw, generator=g).to(p)
    z = torch.randn(1, c, latent_frames, *latent_hw, generator=g).to(p)
    gen = gen.to(device=p.device, dtype=p.dtype)
    with torch.no_grad():
        stream = open_pipeline_stream(vae)
        frames = stream.step(z0)  # the first call is special (its first latent frame -> one pixel frame)
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
