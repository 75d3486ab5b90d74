"""Benchmark harness: wall time, time to first frame, per-chunk latency, throughput, peak memory, FLOPs.

One measurement = one :class:`BenchConfig` (model, sizes, strategy, its parameters, consumer):
an untimed *probe* decode that measures peak memory and counts FLOPs, ``warmup - 1`` more untimed
decodes, then ``repeats`` timed decodes with nothing attached (the first decode of a model in a
process is run once more and discarded). Every record carries the machine metadata
(:func:`environment`) and goes into a JSONL :class:`ResultStore`, one line per measurement, so a
sweep resumes where it stopped. :func:`measure_interleaved` runs repeat r of several
configurations back to back (A B A B ...) so load drifts on a shared machine hit all alike, and
:func:`with_ratios` then pairs repeats.

Timing
    CPU: ``time.perf_counter``. CUDA: ``torch.cuda.Event`` pairs recorded on the stream, read
    after ``torch.cuda.synchronize`` (the decode iterators also synchronise per chunk).

Peak memory of the decode itself (``peak_bytes``)
    CUDA: ``torch.cuda.max_memory_allocated`` (and ``_reserved``) after ``reset_peak_memory_stats``,
    minus what was allocated before the decode.
    CPU: the kernel's resident-set high-water mark. Before the probe decode we run the garbage
    collector, hand free heap pages back to the OS (glibc ``malloc_trim``), reset the high-water
    mark (write ``5`` to ``/proc/self/clear_refs``, Linux >= 4.0) and read ``VmRSS`` as the
    baseline; after the decode ``VmHWM - baseline`` is the decode's own peak. During the probe
    glibc's mmap threshold is fixed at 64 KiB (:func:`exact_rss`) so freed heap pages that were
    resident before the baseline are not silently recycled. Model and latent are already resident,
    so they are not counted. Accuracy: the tests allocate a 200 MB tensor (and 80 MB of recycled
    8 MB blocks) and require the reading within +- 8 MB; pages allocated but never touched are not
    counted. The peak of a whole decode spreads much more between processes: Wan 2.1, 33x64x64,
    read 110-215 MB in five different processes (cause not pinned down: allocator state left by
    earlier shapes is the main suspect), so compare memory within one interleaved run. ``isolate=True`` runs each configuration in a fresh interpreter
    (``python -m vaestudy.bench``, model loaded there); where ``clear_refs`` is not writable the
    fallback is ``ru_maxrss`` of that fresh process minus its baseline (``memory_method`` says which).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import datetime as _dt
import gc
import hashlib
import json
import math
import os
import platform
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch

from vaestudy.devices import canonical_device, check_device, same_device
from vaestudy.models import get_family

STRATEGIES = ("full", "tiled", "chunked", "tiled+chunked", "chunked-naive")
STREAMING = ("chunked", "tiled+chunked", "chunked-naive")
CONSUMERS = ("discard", "keep", "video")
DTYPES = ("float32", "float16", "bfloat16")


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchConfig:
    """One measurement. Sizes in pixels (frames, (height, width)); chunk in latent frames;
    tile and overlap in latent pixels (an int or a (height, width) pair)."""

    model: str = "wan2.1"
    weights: str = "random"
    frames: int = 17
    size: tuple[int, int] = (64, 64)
    strategy: str = "full"
    chunk: int | None = None
    tile: int | tuple[int, int] | None = None
    overlap: int | tuple[int, int] | None = None
    consumer: str = "keep"
    repeats: int = 3
    warmup: int = 1
    device: str = "cpu"
    dtype: str = "float32"
    seed: int = 0

    def params(self) -> dict:
        """Strategy parameters that matter for this strategy (others dropped)."""
        p: dict = {}
        if self.strategy in STREAMING:
            p["chunk"] = self.chunk
        if self.strategy in ("tiled", "tiled+chunked"):
            p["tile"] = list(_pair(self.tile)) if self.tile is not None else None
            p["overlap"] = list(_pair(self.overlap)) if self.overlap is not None else None
        return p

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        d.update(self.params())
        for k in ("chunk", "tile", "overlap"):
            if k not in self.params():
                d[k] = None
        return d


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def validate_config(cfg: BenchConfig) -> BenchConfig:
    """Check a configuration without loading a model; fill in default chunk/tile/overlap.

    Raises ValueError naming the parameter, the value and what is valid.
    """
    from vaestudy.decode.streams import chunk_plan
    from vaestudy.decode.tiled import TilePlan
    from vaestudy.models import WEIGHT_SOURCES

    family = get_family(cfg.model)
    if cfg.weights not in WEIGHT_SOURCES:
        raise ValueError(f"weights={cfg.weights!r} is not a weight source; valid: {', '.join(WEIGHT_SOURCES)}")
    if cfg.strategy not in STRATEGIES:
        raise ValueError(f"strategy={cfg.strategy!r} is unknown; valid: {', '.join(STRATEGIES)}")
    if cfg.consumer not in CONSUMERS:
        raise ValueError(f"consumer={cfg.consumer!r} is unknown; valid: {', '.join(CONSUMERS)}")
    if cfg.dtype not in DTYPES:
        raise ValueError(f"dtype={cfg.dtype!r} is unknown; valid: {', '.join(DTYPES)}")
    for name, v, lo in (("repeats", cfg.repeats, 1), ("warmup", cfg.warmup, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ValueError(f"{name}={v!r} must be an integer >= {lo}")
    if not (isinstance(cfg.size, (tuple, list)) and len(cfg.size) == 2):
        raise ValueError(f"size={cfg.size!r} must be a (height, width) pair in pixels")
    _, lt, lh, lw = family.latent_shape(cfg.frames, int(cfg.size[0]), int(cfg.size[1]))
    changes: dict = {"size": (int(cfg.size[0]), int(cfg.size[1])),
                     "device": str(check_device(cfg.device))}  # one spelling: "cuda" -> "cuda:0", "cpu:0" -> "cpu"
    if cfg.strategy in STREAMING:
        if not family.streamable and cfg.strategy != "chunked-naive":
            raise ValueError(f"strategy={cfg.strategy!r} needs a temporal cache; {family.name} has none "
                             f"(use full, tiled or chunked-naive)")
        chunk = cfg.chunk if cfg.chunk is not None else (2 if family.cache == "conv_cache" else 1)
        chunk_plan(family, lt, chunk)  # validates chunk
        changes["chunk"] = chunk
    if cfg.strategy in ("tiled", "tiled+chunked"):
        if cfg.tile is None:
            from vaestudy.experiments import default_tile_plan

            plan = default_tile_plan((lh, lw), 2 if cfg.overlap is None else _pair(cfg.overlap)[0])
        else:
            plan = TilePlan.build((lh, lw), cfg.tile, 2 if cfg.overlap is None else cfg.overlap)
        changes["tile"], changes["overlap"] = tuple(plan.tile), tuple(plan.overlap)
    return dataclasses.replace(cfg, **changes)


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


IDENTITY_FIELDS = ("device", "device_name", "threads", "torch", "diffusers", "dtype")


def config_key(cfg: BenchConfig, env: dict) -> str:
    """Stable hash of a configuration plus the environment fields that change results."""
    payload = {"config": cfg.as_dict(), "env": {k: env.get(k) for k in IDENTITY_FIELDS}}
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=list).encode()).hexdigest()[:16]


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# timing and memory
# ---------------------------------------------------------------------------------------------
class Timer:
    """Marks since ``start()``: CUDA events on a CUDA device, perf_counter on CPU. ``read()`` in s."""

    def __init__(self, device: str | torch.device):
        self.device = canonical_device(device)
        self.cuda = self.device.type == "cuda"

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            self.events = [self._event()]
        else:
            self.marks: list[float] = []
            self.t0 = time.perf_counter()

    def _event(self):
        e = torch.cuda.Event(enable_timing=True)
        e.record(torch.cuda.current_stream(self.device))
        return e

    def mark(self) -> None:
        if self.cuda:
            self.events.append(self._event())
        else:
            self.marks.append(time.perf_counter() - self.t0)

    def read(self) -> list[float]:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            return [self.events[0].elapsed_time(e) / 1000.0 for e in self.events[1:]]
        return list(self.marks)


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


# ---------------------------------------------------------------------------------------------
# consumers: what happens to frames as they arrive
# ---------------------------------------------------------------------------------------------
class DiscardConsumer:
    """Drops every chunk (a sink that displays or sends frames and forgets them)."""

    def __call__(self, frames: torch.Tensor) -> None:
        pass

    def close(self) -> None:
        pass


class KeepConsumer:
    """Accumulates every chunk and concatenates at the end (what ``decode_*`` returns)."""

    def __init__(self):
        self.parts: list[torch.Tensor] = []
        self.video = None

    def __call__(self, frames: torch.Tensor) -> None:
        self.parts.append(frames)

    def close(self) -> None:
        self.video = torch.cat(self.parts, dim=2) if self.parts else None
        self.parts = []


class VideoConsumer:
    """Writes frames to an MP4 (PyAV, H.264 if available) as they arrive; frames in [-1, 1]."""

    def __init__(self, path: str | os.PathLike, fps: int = 16):
        import av

        self.path = str(path)
        self.fps = fps
        self.container = av.open(self.path, mode="w")
        self.stream = None
        self.frames_written = 0

    def __call__(self, frames: torch.Tensor) -> None:
        import av

        x = frames[0].detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
        x = x.permute(1, 2, 3, 0).contiguous().cpu().numpy()  # (n, h, w, 3)
        if self.stream is None:
            codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
            self.stream = self.container.add_stream(codec, rate=self.fps)
            self.stream.width, self.stream.height = x.shape[2] - x.shape[2] % 2, x.shape[1] - x.shape[1] % 2
            self.stream.pix_fmt = "yuv420p"
        for img in x:
            img = img[: self.stream.height, : self.stream.width]
            for packet in self.stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                self.container.mux(packet)
            self.frames_written += 1

    def close(self) -> None:
        if self.stream is not None:
            for packet in self.stream.encode():
                self.container.mux(packet)
        self.container.close()


@contextlib.contextmanager
def open_consumer(kind: str, folder: str | None = None):
    """A consumer of ``kind`` (discard, keep, video); a video goes to a temporary file, removed after."""
    if kind == "discard":
        yield DiscardConsumer()
    elif kind == "keep":
        yield KeepConsumer()
    elif kind == "video":
        fd, path = tempfile.mkstemp(suffix=".mp4", dir=folder)
        os.close(fd)
        try:
            yield VideoConsumer(path)
        finally:
            with contextlib.suppress(OSError):
                os.remove(path)
    else:
        raise ValueError(f"consumer={kind!r} is unknown; valid: {', '.join(CONSUMERS)}")


# ---------------------------------------------------------------------------------------------
# running one strategy
# ---------------------------------------------------------------------------------------------
def iter_strategy(vae, z: torch.Tensor, cfg: BenchConfig) -> Iterator[torch.Tensor]:
    """Pixel frames of ``cfg.strategy`` as they become final (one tensor for full and tiled)."""
    from vaestudy.decode import decode_full, decode_tiled, iter_chunked, iter_tiled_chunked

    s = cfg.strategy
    if s == "full":
        yield decode_full(vae, z).video
    elif s == "tiled":
        yield decode_tiled(vae, z, tile=cfg.tile, overlap=cfg.overlap).video
    elif s == "chunked":
        for ch in iter_chunked(vae, z, cfg.chunk, mode="cache"):
            yield ch.frames
    elif s == "chunked-naive":
        for ch in iter_chunked(vae, z, cfg.chunk, mode="naive"):
            yield ch.frames
    elif s == "tiled+chunked":
        for ch in iter_tiled_chunked(vae, z, cfg.chunk, tile=cfg.tile, overlap=cfg.overlap):
            yield ch.frames
    else:
        raise ValueError(f"strategy={s!r} is unknown; valid: {', '.join(STRATEGIES)}")


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


def run_once(vae, z: torch.Tensor, cfg: BenchConfig, *, memory: bool = False, flops: bool = False) -> dict:
    """One decode: wall (s), first frame (s), per-chunk latency (s), consumer time (s); with ``memory``
    the peak bytes, with ``flops`` the FLOP count (both make the run unfit for timing statistics)."""
    from torch.utils.flop_counter import FlopCounterMode

    from vaestudy.decode.common import clear_vae_cache

    device = z.device
    clear_vae_cache(vae)
    probe = PeakMemory(device)
    timer = Timer(device)
    counter = FlopCounterMode(display=False) if flops else contextlib.nullcontext()
    exact = exact_rss() if (memory and device.type == "cpu") else contextlib.nullcontext()
    with exact, open_consumer(cfg.consumer) as consume:
        if memory:
            probe.start()
        timer.start()
        frames = 0
        with counter:
            for out in iter_strategy(vae, z, cfg):
                timer.mark()  # chunk ready
                consume(out)
                frames += out.shape[2]
                del out
                timer.mark()  # consumer done
        consume.close()
        timer.mark()
        marks = timer.read()
        mem = probe.stop() if memory else {}
        del consume
    clear_vae_cache(vae)
    arrive, done, end = marks[0:-1:2], marks[1:-1:2], marks[-1]
    starts = [0.0] + done[:-1]
    out = {"wall_s": end, "first_frame_s": arrive[0], "chunk_s": [a - b for a, b in zip(arrive, starts)],
           "consumer_s": sum(d - a for a, d in zip(arrive, done)) + (end - done[-1]), "frames_out": frames, **mem,
           "memory_method": probe.method if memory else None}
    if flops:
        out["flops"] = int(counter.get_total_flops())
    return out


def count_flops(vae, z: torch.Tensor, cfg: BenchConfig) -> int:
    """FLOPs of one decode (torch.utils.flop_counter; convolutions and matmuls, 2 per multiply-add)."""
    return run_once(vae, z, cfg, flops=True)["flops"]


def _summary_stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _load_for(cfg: BenchConfig, vae):
    from vaestudy.models import load_vae

    dtype = getattr(torch, cfg.dtype)
    t = time.perf_counter()
    if vae is None:
        vae = load_vae(cfg.model, cfg.weights, device=cfg.device, dtype=dtype, seed=cfg.seed)
    else:
        p = next(vae.parameters())
        if not same_device(p.device, cfg.device) or p.dtype != dtype:
            raise ValueError(f"vae is {p.dtype} on {p.device} but the config asks {cfg.dtype} on {cfg.device}")
    weights = getattr(vae, "weights_source", cfg.weights)
    if weights != cfg.weights:
        raise ValueError(f"config weights={cfg.weights!r} but the model passed in has weights={weights!r}")
    return vae, time.perf_counter() - t


def _prepare(vae, cfg: BenchConfig, flops: bool):
    """Latent, then the untimed decodes: the first probes peak memory (and counts FLOPs), the rest warm up."""
    from vaestudy.experiments import random_latent

    z = random_latent(vae, cfg.frames, cfg.size, seed=cfg.seed)
    if not getattr(vae, "_vaestudy_bench_warmed", False):
        # the first decode of a model in a process allocates one-time state (thread pools, kernel
        # caches); it would inflate the first configuration's peak, so it is run and discarded
        run_once(vae, z, cfg)
        vae._vaestudy_bench_warmed = True
    probe = run_once(vae, z, cfg, memory=True, flops=flops)
    for _ in range(max(0, cfg.warmup - 1)):
        run_once(vae, z, cfg)
    return z, probe


def measure(cfg: BenchConfig, *, vae=None, flops: bool = True, isolate: bool = False,
            machine_peak_flops: float | None = None, run_id: str | None = None, env: dict | None = None) -> dict:
    """Measure one configuration and return its record (a JSON-able dict).

    Order: one untimed *probe* decode (peak memory under :func:`exact_rss`, FLOPs with
    FlopCounterMode; it is the first warm-up, and happens even with ``warmup=0``), ``warmup - 1``
    more untimed decodes, then ``repeats`` timed decodes with nothing else attached. The very first
    decode of a model in a process is run once more before the probe and discarded. With
    ``isolate=True`` all of it runs in a fresh interpreter.
    """
    cfg = validate_config(cfg)
    if isolate:
        return _measure_isolated(cfg, flops=flops, machine_peak_flops=machine_peak_flops, run_id=run_id)
    vae, load_s = _load_for(cfg, vae)
    z, probe = _prepare(vae, cfg, flops)
    runs = [run_once(vae, z, cfg) for _ in range(cfg.repeats)]
    return _record(cfg, vae, runs, probe, env, machine_peak_flops, run_id, {"load_s": load_s, "isolated": False,
                                                                           "interleaved": False})


def _record(cfg, vae, runs, probe, env, machine_peak_flops, run_id, extra):
    env = dict(env or environment(cfg.device, cfg.dtype))
    env["loadavg"] = environment(cfg.device, cfg.dtype)["loadavg"]
    extra = dict(extra, model_bytes=sum(p.numel() * p.element_size() for p in vae.parameters()),
                 probe_wall_s=probe["wall_s"])
    return make_record(cfg, runs, env=env, weights=getattr(vae, "weights_source", cfg.weights),
                       flops=probe.get("flops"), machine_peak_flops=machine_peak_flops, run_id=run_id,
                       memory=probe, extra=extra)


def measure_interleaved(cfgs: list[BenchConfig], *, vae=None, flops: bool = True,
                        machine_peak_flops: float | None = None, run_id: str | None = None,
                        env: dict | None = None) -> list[dict]:
    """Measure several configurations of one model side by side: after every configuration's probe and
    warm-up, repeat r of each configuration runs in turn (A B C A B C ...), so slow drifts in background
    load hit every strategy alike. Returns one record per configuration."""
    cfgs = [validate_config(c) for c in cfgs]
    keys = {(c.model, c.weights, c.device, c.dtype, c.seed) for c in cfgs}
    if len(keys) > 1:
        raise ValueError(f"interleaved configurations must share model, weights, device, dtype and seed; got {sorted(keys)}")
    vae, load_s = _load_for(cfgs[0], vae)
    prepared = [_prepare(vae, c, flops) for c in cfgs]
    runs: list[list[dict]] = [[] for _ in cfgs]
    for r in range(max(c.repeats for c in cfgs)):
        for i, c in enumerate(cfgs):
            if r < c.repeats:
                runs[i].append(run_once(vae, prepared[i][0], c))
    return [_record(c, vae, runs[i], prepared[i][1], env, machine_peak_flops, run_id,
                    {"load_s": load_s, "isolated": False, "interleaved": True}) for i, c in enumerate(cfgs)]


def make_record(cfg: BenchConfig, runs: list[dict], *, env: dict, weights: str, flops: int | None = None,
                machine_peak_flops: float | None = None, run_id: str | None = None, memory: dict | None = None,
                extra: dict | None = None) -> dict:
    """Assemble the stored record from raw runs (pure; the tests use it directly).

    ``memory`` is the probe run's result (peak_bytes, memory_method); without it the runs' own are used.
    """
    family = get_family(cfg.model)
    c, lt, lh, lw = family.latent_shape(cfg.frames, *cfg.size)
    wall = [r["wall_s"] for r in runs]
    first = [r["first_frame_s"] for r in runs]
    steady = [x for r in runs for x in r["chunk_s"][1:]]  # chunk 0 of a causal stream is 1 frame: not steady
    med = statistics.median(wall)
    mem_runs = [memory] if memory is not None else [r for r in runs if r.get("memory_method")]
    rec = {
        "key": config_key(cfg, env),
        "run_id": run_id or new_run_id(),
        "timestamp": utc_now(),
        **cfg.as_dict(),
        "weights_source": weights,
        "latent_shape": [c, lt, lh, lw],
        "pixel_frames": cfg.frames * cfg.size[0] * cfg.size[1],
        "wall_s": _summary_stats(wall),
        "first_frame_s": _summary_stats(first),
        "wall_s_all": wall,
        "first_frame_s_all": first,
        "chunks": len(runs[0]["chunk_s"]),
        "chunk_s_median_run": runs[wall.index(sorted(wall)[len(wall) // 2])]["chunk_s"],
        "chunk_s_steady_median": statistics.median(steady) if steady else None,
        "chunk_jitter_s": statistics.pstdev(steady) if len(steady) > 1 else 0.0,
        "chunk_jitter_range_s": (max(steady) - min(steady)) if steady else 0.0,
        "consumer_s": statistics.median(r["consumer_s"] for r in runs),
        "fps": cfg.frames / med,
        "peak_bytes": max(r["peak_bytes"] for r in mem_runs) if mem_runs else None,
        "memory_method": mem_runs[0]["memory_method"] if mem_runs else None,
        "flops": flops,
        "flops_per_s": flops / med if flops else None,
        "machine_peak_flops": machine_peak_flops,
        "env": env,
    }
    rec["fraction_of_peak"], rec["peak_error"] = fraction_of_peak(flops, med, machine_peak_flops)
    if any("peak_reserved_bytes" in r for r in mem_runs):
        rec["peak_reserved_bytes"] = max(r.get("peak_reserved_bytes", 0) for r in mem_runs)
    rec.update(extra or {})
    return rec


def new_run_id() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


# ---- isolation: one fresh interpreter per measurement --------------------------------------
# A plain subprocess (``python -m vaestudy.bench``) rather than multiprocessing: spawn re-imports
# the caller's main module, which breaks for scripts and ``python -m`` entry points without a guard.
def _child_main() -> int:
    import sys

    job = json.loads(sys.stdin.read())
    try:
        torch.set_num_threads(job["threads"])
        cfg = BenchConfig(**{**job["config"], "size": tuple(job["config"]["size"])})
        if job.get("probe_bytes") is not None:  # memory-method self test: one allocation of known size
            n = int(job["probe_bytes"]) // 4
            out = {"peak_bytes": measure_peak(lambda: torch.ones(n), "cpu")}
        else:
            out = measure(cfg, isolate=False, **job["kwargs"])
            out["isolated"] = True
        payload = {"status": "ok", "record": out}
    except BaseException as exc:  # report, never hang the parent
        payload = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write("\n" + _RESULT_MARK + json.dumps(payload, default=_json_default) + "\n")
    return 0


_RESULT_MARK = "@@vaestudy-bench-result@@"


def _run_child(job: dict) -> dict:
    import subprocess
    import sys

    job = {**job, "threads": torch.get_num_threads()}
    proc = subprocess.run([sys.executable, "-m", "vaestudy.bench"], input=json.dumps(job, default=_json_default),
                          capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_RESULT_MARK)]
    if not lines:
        raise RuntimeError(f"benchmark subprocess died (exit code {proc.returncode}): {proc.stderr[-2000:]}")
    payload = json.loads(lines[-1][len(_RESULT_MARK):])
    if payload["status"] != "ok":
        raise RuntimeError(f"benchmark subprocess failed: {payload['error']}")
    return payload["record"]


def _measure_isolated(cfg: BenchConfig, **kwargs) -> dict:
    return _run_child({"config": dataclasses.asdict(cfg), "kwargs": kwargs})


def isolated_probe(nbytes: int) -> int:
    """Peak bytes the CPU method reads, in a fresh interpreter, for one ``torch.ones`` of ``nbytes``."""
    return int(_run_child({"config": dataclasses.asdict(BenchConfig()), "probe_bytes": nbytes})["peak_bytes"])


# ---------------------------------------------------------------------------------------------
# machine peak (roofline ceiling)
# ---------------------------------------------------------------------------------------------
# Microbenchmark shapes per device type: matmuls (n, n) @ (n, n) and 3x3x3 Conv3d (channels, frames, height, width)
# shaped like a video decoder's up-blocks (many channels at low resolution, fewer at high).  On CUDA: the shapes of a
# 480x832 Wan-class decode (c384 at 1/8, c192 at 1/4, c96 at 1/2 of the frame) and matmuls large enough to saturate
# an H100/H200; on CPU, small enough to take a second or two.
PEAK_SHAPES = {
    "cpu": {"matmul": (512, 1024), "conv3d": ((128, 4, 32, 32), (64, 4, 64, 64))},
    "cuda": {"matmul": (4096, 8192), "conv3d": ((384, 4, 60, 104), (192, 4, 120, 208), (96, 4, 240, 416))},
}


def machine_peak(device: str = "cpu", dtype: str = "float32", *, repeats: int = 3, shapes: dict | None = None) -> dict:
    """Best achieved FLOP/s on ``device``/``dtype`` over matmul and decoder-shaped Conv3d microbenchmarks.

    Every shape of ``shapes`` (default :data:`PEAK_SHAPES` for the device type) is run ``repeats`` times after a
    warm-up; FLOPs come from FlopCounterMode (2 per multiply-add), time from :class:`Timer`. Returns ``peak_flops``
    (the best of all), ``peak_op`` and ``peak_shape`` (which shape gave it), the best per op (``matmul_flops``,
    ``conv3d_flops``) and every row. A decode that beats this peak is a measurement error (see
    :func:`fraction_of_peak`).
    """
    from torch.utils.flop_counter import FlopCounterMode

    dev = check_device(device)
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is unknown; valid: {', '.join(DTYPES)}")
    shapes = shapes or PEAK_SHAPES[dev.type]
    dt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(0)
    cases = []
    for n in shapes.get("matmul", ()):
        a, b = (torch.randn(n, n, generator=g).to(dev, dt) for _ in range(2))
        cases.append(("matmul", f"{n}x{n}x{n}", lambda a=a, b=b: a @ b))
    for cin, t, h, w in shapes.get("conv3d", ()):
        x = torch.randn(1, cin, t + 2, h, w, generator=g).to(dev, dt)
        conv = torch.nn.Conv3d(cin, cin, 3, padding=(0, 1, 1)).to(dev, dt).eval()
        cases.append(("conv3d", f"c{cin} t{t} {h}x{w}", lambda x=x, conv=conv: conv(x)))
    rows = []
    timer = Timer(dev)
    with torch.no_grad():
        for op, shape, fn in cases:
            with FlopCounterMode(display=False) as fc:
                fn()
            flops = fc.get_total_flops()
            fn()  # warm-up (cuDNN/oneDNN algorithm choice, allocator)
            best = math.inf
            for _ in range(repeats):
                timer.start()
                fn()
                timer.mark()
                best = min(best, timer.read()[0])
            rows.append({"op": op, "shape": shape, "flops": flops, "seconds": best, "flop_s": flops / best})
    top = max(rows, key=lambda r: r["flop_s"])
    out = {f"{op}_flops": max((r["flop_s"] for r in rows if r["op"] == op), default=None) for op in ("matmul", "conv3d")}
    out.update(peak_flops=top["flop_s"], peak_op=top["op"], peak_shape=top["shape"], rows=rows,
               device=str(dev), dtype=dtype, threads=torch.get_num_threads())
    return out


def fraction_of_peak(flops: float | None, seconds: float, peak_flops: float | None) -> tuple[float | None, str | None]:
    """(achieved / peak, None), or (None, why) when it cannot be told; above 1.0 is a measurement error, not a result."""
    if not flops or not peak_flops:
        return None, None
    frac = flops / seconds / peak_flops
    if frac > 1.0:
        return None, (f"achieved {flops / seconds:.3g} FLOP/s exceeds the measured peak {peak_flops:.3g} FLOP/s "
                      f"({frac:.2f}x): the peak microbenchmark under-measures this device (shapes too small?)")
    return frac, None
# ---------------------------------------------------------------------------------------------
# results store
# ---------------------------------------------------------------------------------------------
class ResultStore:
    """Append-only JSONL file, one measurement per line.

    ``append`` encodes the whole line first and hands it to the kernel in one ``os.write`` on an
    ``O_APPEND`` descriptor, then ``fsync``: a record is either entirely on disk or absent, and an
    interrupt (Ctrl-C) cannot lose records already appended. ``load`` skips a torn last line
    (from a crash or a full disk) and counts it in ``self.skipped``.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.skipped = 0

    def append(self, record: dict) -> None:
        line = (json.dumps(record, sort_keys=True, default=_json_default) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # A torn earlier line (crash mid-write) must not swallow this record: start on a fresh line.
            if os.fstat(fd).st_size and not self._ends_with_newline():
                line = b"\n" + line
            n = os.write(fd, line)
            if n != len(line):
                raise OSError(f"short write to {self.path}: {n} of {len(line)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def load(self) -> list[dict]:
        self.skipped = 0
        if not self.path.exists():
            return []
        out = []
        with open(self.path, "rb") as f:
            for raw in f:
                raw = raw.strip()
                if not raw:
                    continue
                try:
                    out.append(json.loads(raw))
                except json.JSONDecodeError:
                    self.skipped += 1
        return out

    def keys(self) -> set[str]:
        return {r.get("key") for r in self.load()}

    def by_key(self) -> dict[str, dict]:
        return {r["key"]: r for r in self.load() if "key" in r}


def _json_default(o):
    if isinstance(o, (tuple, set)):
        return list(o)
    if isinstance(o, torch.dtype):
        return str(o).replace("torch.", "")
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot store {type(o).__name__} in a result record")


def sweep(configs: Iterable[BenchConfig], store: ResultStore | str | os.PathLike | None = None, *, vae=None,
          isolate: bool = False, flops: bool = True, machine_peak_flops: float | None = None,
          progress: bool = True, run_id: str | None = None, resume: bool = True,
          interleave: bool = False) -> list[dict]:
    """Measure every configuration not already in ``store`` (resume, keyed by :func:`config_key`).

    Every configuration is validated before anything is measured. Returns the records of all
    configurations, measured now or loaded; each new record is appended as soon as it exists.
    ``interleave=True`` (in this process only) measures the missing configurations of each model
    side by side with :func:`measure_interleaved`; their records are appended together at the end.
    """
    if interleave:
        return _sweep_interleaved(list(configs), store, vae=vae, flops=flops, machine_peak_flops=machine_peak_flops,
                                  progress=progress, run_id=run_id, resume=resume)
    from tqdm.auto import tqdm

    configs, store, run_id, envs, done = _sweep_setup(configs, store, run_id, resume)
    models: dict[tuple, torch.nn.Module] = {}  # inline runs load each model once
    records = []
    bar = tqdm(configs, disable=None if progress else True, desc="bench", unit="config")  # None: off unless a terminal
    seen: set[str] = set()
    for cfg in bar:
        env = envs[(cfg.device, cfg.dtype)]
        key = config_key(cfg, env)
        if key in seen:  # the same configuration listed twice (overlapping sweeps): measure once
            continue
        seen.add(key)
        bar.set_postfix_str(f"{cfg.strategy} {cfg.frames}x{cfg.size[0]}x{cfg.size[1]} {cfg.consumer}")
        if key in done:
            rec = dict(done[key])
            rec["resumed"] = True
        else:
            model = vae
            if model is None and not isolate:
                from vaestudy.models import load_vae

                mk = (cfg.model, cfg.weights, cfg.device, cfg.dtype, cfg.seed)
                if mk not in models:
                    models.clear()  # one resident model at a time
                    models[mk] = load_vae(cfg.model, cfg.weights, device=cfg.device, dtype=getattr(torch, cfg.dtype),
                                          seed=cfg.seed)
                model = models[mk]
            rec = measure(cfg, vae=model, flops=flops, isolate=isolate, machine_peak_flops=machine_peak_flops,
                          run_id=run_id, env=env)
            if store is not None:
                store.append(rec)
            rec["resumed"] = False
        records.append(rec)
    return records


def _sweep_setup(configs, store, run_id, resume):
    """Validated configs, the opened store, the run id, environments per (device, dtype), results already stored."""
    configs = [validate_config(c) for c in configs]
    if isinstance(store, (str, os.PathLike)):
        store = ResultStore(store)
    run_id = run_id or new_run_id()
    envs = {(c.device, c.dtype): environment(c.device, c.dtype) for c in configs}
    done = store.by_key() if (store is not None and resume) else {}
    return configs, store, run_id, envs, done


def _sweep_interleaved(configs, store, *, vae, flops, machine_peak_flops, progress, run_id, resume):
    configs, store, run_id, envs, done = _sweep_setup(configs, store, run_id, resume)
    keyed, todo, seen = [], {}, set()
    for c in configs:
        k = config_key(c, envs[(c.device, c.dtype)])
        if k in seen:
            continue
        seen.add(k)
        keyed.append((k, c))
        if k not in done:
            todo.setdefault((c.model, c.weights, c.device, c.dtype, c.seed), []).append(c)
    new: dict[str, dict] = {}
    for group in todo.values():
        if progress:
            print(f"interleaving {len(group)} configurations x {max(c.repeats for c in group)} repeats ...", flush=True)
        recs = measure_interleaved(group, vae=vae, flops=flops, machine_peak_flops=machine_peak_flops, run_id=run_id,
                                   env=envs[(group[0].device, group[0].dtype)])
        for r in recs:
            if store is not None:
                store.append(r)
            new[r["key"]] = dict(r, resumed=False)
    return [new[k] if k in new else dict(done[k], resumed=True) for k, _ in keyed]


def split_list(text: str | list | tuple, name: str) -> list[str]:
    """'a,b' or ['a', 'b'] → ['a', 'b']; ValueError when empty."""
    items = [str(t).strip() for t in (text.split(",") if isinstance(text, str) else text) if str(t).strip()]
    if not items:
        raise ValueError(f"{name}={text!r} is empty")
    return items


def build_configs(*, model: str = "wan2.1", weights: str = "random", frames="17", sizes="64x64",
                  strategies="full,tiled,chunked,tiled+chunked", chunk: int | None = None, tile=None,
                  overlap=None, consumers="auto", repeats: int = 3, warmup: int = 1, device: str = "cpu",
                  dtype: str = "float32", seed: int = 0) -> list[BenchConfig]:
    """Every (frames, size, strategy, consumer) configuration, validated (ValueError) before any model load.

    ``consumers='auto'``: streaming strategies hand frames to ``discard``, full and tiled ``keep``.
    Full and tiled always produce the whole video at once, so ``discard`` is measured as ``keep``.
    """
    from vaestudy.experiments import parse_size

    try:
        frame_list = [int(f) for f in split_list(str(frames) if not isinstance(frames, (list, tuple)) else frames,
                                                 "frames")]
    except (TypeError, ValueError):
        raise ValueError(f"frames={frames!r} must be an integer or a comma list of integers, e.g. 17,33") from None
    size_list = [parse_size(s) if isinstance(s, str) else tuple(s)
                 for s in (split_list(sizes, "size") if isinstance(sizes, str) else sizes)]
    strategy_list = split_list(strategies, "strategies")
    for s in strategy_list:
        if s not in STRATEGIES:
            raise ValueError(f"strategy={s!r} is unknown; valid: {', '.join(STRATEGIES)}")
    consumer_list = split_list(consumers, "consumer")
    for c in consumer_list:
        if c not in CONSUMERS + ("auto",):
            raise ValueError(f"consumer={c!r} is unknown; valid: auto, {', '.join(CONSUMERS)}")
    out: list[BenchConfig] = []
    for f in frame_list:
        for size in size_list:
            for s in strategy_list:
                cons = []
                for c in consumer_list:
                    if c == "auto":
                        c = "discard" if s in STREAMING else "keep"
                    if s not in STREAMING and c == "discard":
                        c = "keep"
                    if c not in cons:
                        cons.append(c)
                for c in cons:
                    cfg = BenchConfig(model=model, weights=weights, frames=f, size=size, strategy=s, chunk=chunk,
                                      tile=tile, overlap=overlap, consumer=c, repeats=repeats, warmup=warmup,
                                      device=device, dtype=dtype, seed=seed)
                    out.append(validate_config(cfg))
    return out


# ---------------------------------------------------------------------------------------------
# tables and summaries
# ---------------------------------------------------------------------------------------------
GROUP_FIELDS = ("run_id", "model", "weights", "frames", "size", "device", "dtype")


def _group_key(r: dict) -> tuple:
    return tuple(json.dumps(r.get(k), default=list) for k in GROUP_FIELDS)


def label(r: dict) -> str:
    """Short name of a record's strategy, parameters and consumer, e.g. ``chunked c=1 keep``."""
    parts = [r["strategy"]]
    if r.get("chunk") is not None:
        parts.append(f"c={r['chunk']}")
    if r.get("tile") is not None:
        t, o = r["tile"], r.get("overlap")
        parts.append(f"t={t[0]}x{t[1]}/o={o[0]}" if isinstance(t, list) else f"t={t}/o={o}")
    parts.append(r.get("consumer", ""))
    return " ".join(parts)


def with_ratios(records: list[dict]) -> list[dict]:
    """Rows with every figure divided by the ``full`` record of the same run and shape.

    A ``full`` reference is taken only from the same ``run_id`` (measured side by side), with the
    same consumer when there is one, else any consumer. No reference → ratios are None. When both
    were measured interleaved with the same number of repeats, time ratios are medians of the
    per-repeat ratios (``paired=True``; ``wall_ratio_min``/``_max`` give their range).
    """
    refs: dict[tuple, list[dict]] = {}
    for r in records:
        if r["strategy"] == "full":
            refs.setdefault(_group_key(r), []).append(r)
    rows = []
    for r in records:
        cands = refs.get(_group_key(r), [])
        ref = next((f for f in cands if f.get("consumer") == r.get("consumer")), cands[0] if cands else None)
        row = {
            "label": label(r), "strategy": r["strategy"], "frames": r["frames"], "size": tuple(r["size"]),
            "consumer": r.get("consumer"), "run_id": r.get("run_id"),
            "wall_s": r["wall_s"]["median"], "wall_min_s": r["wall_s"]["min"], "wall_max_s": r["wall_s"]["max"],
            "first_frame_s": r["first_frame_s"]["median"], "fps": r["fps"], "peak_bytes": r.get("peak_bytes"),
            "chunk_s": r.get("chunk_s_steady_median"), "jitter_s": r.get("chunk_jitter_s"),
            "fraction_of_peak": r.get("fraction_of_peak"), "peak_error": r.get("peak_error"), "flops": r.get("flops"),
            "latent_frames": r["latent_shape"][1], "ref": ref is not None,
        }
        if ref is not None:
            fw = ref["wall_s"]["median"]
            row.update(
                wall_ratio=row["wall_s"] / fw,
                fps_ratio=row["fps"] / ref["fps"],
                first_frame_ratio=row["first_frame_s"] / fw,  # against the full decode's whole latency
                peak_ratio=(row["peak_bytes"] / ref["peak_bytes"]) if row["peak_bytes"] and ref.get("peak_bytes") else None,
                paired=False,
            )
            pw, rw = ref.get("wall_s_all") or [], r.get("wall_s_all") or []
            if r.get("interleaved") and ref.get("interleaved") and len(pw) == len(rw) and len(rw) > 1:
                # interleaved repeats ran back to back: the median of per-repeat ratios cancels load drifts
                ratios = [a / b for a, b in zip(rw, pw)]
                row.update(paired=True, wall_ratio=statistics.median(ratios),
                           wall_ratio_min=min(ratios), wall_ratio_max=max(ratios),
                           fps_ratio=statistics.median(b / a for a, b in zip(rw, pw)),
                           first_frame_ratio=statistics.median(f / b for f, b in zip(r["first_frame_s_all"], pw)))
        else:
            row.update(wall_ratio=None, fps_ratio=None, first_frame_ratio=None, peak_ratio=None, paired=False)
        rows.append(row)
    return rows


def _fmt(v, spec: str, none: str = "-") -> str:
    return none if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def format_summary(records: list[dict]) -> str:
    """Plain-text summary: median (min-max) wall, first frame, fps, peak MB, and ratios to ``full``."""
    rows = with_ratios(records)
    head = (f"{'strategy':<30} {'F':>3} {'HxW':>7} {'wall s (min-max)':>20} {'x full':>6} {'1st frame s':>11} "
            f"{'/full wall':>10} {'fps':>6} {'x full':>6} {'peak MB':>8} {'x full':>6} {'%peak':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        wall = f"{r['wall_s']:.3f} ({r['wall_min_s']:.3f}-{r['wall_max_s']:.3f})"
        lines.append(
            f"{r['label']:<30} {r['frames']:>3} {r['size'][0]:>3}x{r['size'][1]:<3} {wall:>20} "
            f"{_fmt(r['wall_ratio'], '.2f'):>6} {r['first_frame_s']:>11.3f} {_fmt(r['first_frame_ratio'], '.3f'):>10} "
            f"{r['fps']:>6.2f} {_fmt(r['fps_ratio'], '.2f'):>6} "
            f"{_fmt(r['peak_bytes'] / 2**20 if r['peak_bytes'] is not None else None, '.0f'):>8} "
            f"{_fmt(r['peak_ratio'], '.2f'):>6} "
            f"{'ERROR' if r['peak_error'] else _fmt(r['fraction_of_peak'] * 100 if r['fraction_of_peak'] else None, '.1f'):>6}"
        )
    errors = sorted({r["peak_error"] for r in rows if r["peak_error"]})
    lines += [f"%peak ERROR: {e}" for e in errors]
    if any(not r["ref"] for r in rows):
        lines.append("('-' ratio: no full decode of the same shape measured in the same run)")
    if any(r.get("paired") for r in rows):
        lines.append("time ratios of interleaved runs are medians of per-repeat ratios (repeat i of a strategy against "
                     "repeat i of full, run back to back):")
        for r in rows:
            if r.get("paired") and r["strategy"] != "full":
                lines.append(f"  {r['label']:<30} {r['frames']:>3}x{r['size'][0]}x{r['size'][1]}: wall x full "
                             f"{r['wall_ratio']:.3f} (per-repeat {r['wall_ratio_min']:.3f}-{r['wall_ratio_max']:.3f}), "
                             f"fps x full {r['fps_ratio']:.3f}, first frame / full wall {r['first_frame_ratio']:.3f}")
    return "\n".join(lines)


def select(records: list[dict], **where) -> list[dict]:
    """Records whose fields equal every ``where`` value (tuples compared as lists)."""
    def norm(v):
        return list(v) if isinstance(v, tuple) else v

    return [r for r in records if all(norm(r.get(k)) == norm(v) for k, v in where.items())]


def column(rows: list[dict], name: str) -> list:
    return [r.get(name) for r in rows]


if __name__ == "__main__":
    import sys

    sys.exit(_child_main())


def series(records: list[dict], x: str, y: str = "wall_s", **where) -> dict:
    """Plot-ready data: {label: {"x": [...], "median": [...], "min": [...], "max": [...]}} sorted by x.

    ``y`` is a record field; a {median, min, max} dict gives the spread, a number gives none
    (``fps`` takes its spread from wall time).
    ``x`` may be a record field or ``"pixels"`` (height * width).
    """
    out: dict[str, dict] = {}
    for r in sorted(select(records, **where), key=lambda r: _xval(r, x)):
        v = r.get(y)
        if y == "fps":  # spread of throughput from the spread of wall time
            w = r["wall_s"]
            v = {"median": r["frames"] / w["median"], "min": r["frames"] / w["max"], "max": r["frames"] / w["min"]}
        if v is None:
            continue
        d = out.setdefault(label(r), {"x": [], "median": [], "min": [], "max": [], "strategy": r["strategy"]})
        d["x"].append(_xval(r, x))
        if isinstance(v, dict):
            d["median"].append(v["median"]), d["min"].append(v["min"]), d["max"].append(v["max"])
        else:
            d["median"].append(v), d["min"].append(v), d["max"].append(v)
    return out


def _xval(r: dict, x: str):
    if x == "pixels":
        return r["size"][0] * r["size"][1]
    if x == "latent_frames":
        return r["latent_shape"][1]
    return r[x]


def growth(records: list[dict], field_name: str = "peak_bytes", x: str = "frames", **where) -> float | None:
    """Ratio of ``field_name`` at the largest x to the smallest x among matching records (one label)."""
    rs = sorted(select(records, **where), key=lambda r: _xval(r, x))
    if len(rs) < 2 or not rs[0].get(field_name):
        return None
    a, b = rs[0][field_name], rs[-1][field_name]
    a = a["median"] if isinstance(a, dict) else a
    b = b["median"] if isinstance(b, dict) else b
    return b / a


def flops_per_pixel_frame(records: list[dict], strategy: str = "chunked") -> float | None:
    """Marginal decode FLOPs per output pixel-frame: the slope of FLOPs against pixel-frames over records
    of one size and several lengths (the first latent frame yields one pixel frame for a whole latent
    frame of work, so FLOPs / pixel-frames of a short video overstates the steady cost). Median over
    sizes; falls back to the plain ratio when no size has two lengths."""
    import numpy as np

    rs = [r for r in records if r["strategy"] == strategy and r.get("flops")]
    slopes = []
    for size in {tuple(r["size"]) for r in rs}:
        pts = sorted({(r["pixel_frames"], r["flops"]) for r in rs if tuple(r["size"]) == size})
        if len({p for p, _ in pts}) >= 2:
            slopes.append(float(np.polyfit([p for p, _ in pts], [f for _, f in pts], 1)[0]))
    if slopes:
        return statistics.median(slopes)
    vals = [r["flops"] / r["pixel_frames"] for r in rs]
    return statistics.median(vals) if vals else None
