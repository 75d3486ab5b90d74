"""Speed levers on the exact stream, each measured side by side in one run, with its error stated.

The subject is the exact stream of a cached family (``exemplar("exact stream")``): the decoder called chunk after
chunk with its causal cache carried (:func:`vaestudy.decode.streams.open_stream`). Every lever decodes the same
seeded latent; repeats are interleaved (repeat r of every lever runs in turn), so load drifts hit all alike. Each row
gives the median with min/max seconds, the speed-up over the plain fp32 stream and over the family's own
``decode()`` (baseline seconds / lever seconds: above 1 is faster) and the error against the fp32 ``decode()``
(max abs, PSNR through :func:`vaestudy.measure.oracle.compare`).

The levers (:data:`LEVERS`):

* ``compile`` — ``torch.compile(decoder, dynamic=False)``: one graph per distinct decoder call signature (input
  frames, first-chunk flag, the cache's shapes). A stream of ``1 + n*k`` latent frames in chunks of ``k`` has few:
  the first chunk, the second (its cache still one frame deep) and the steady chunk. The run counts the compiles
  (``torch._dynamo`` counters, frames compiled) beside the signatures it saw, and reports compile time (the first
  decode's extra seconds) apart from steady time.
* ``bf16``, ``fp16`` — the model and latent cast to that dtype (output compared in fp32).
* ``channels_last_3d`` — weights and latent in ``torch.channels_last_3d``.
* ``cudnn.benchmark`` — cuDNN's algorithm search (CUDA only).
* ``cuda graph`` — the steady chunk captured once as a CUDA graph and replayed, the cache copied back between
  replays (CUDA only).

A lever that cannot run here is a row with ``status`` "skipped: ..." and no numbers; nothing is extrapolated.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vaestudy.clock import Clock
from vaestudy.decode.common import clear_vae_cache, model_device_dtype, own_decode, random_latent
from vaestudy.decode.streams import FeatCacheStream, chunk_plan, open_stream
from vaestudy.measure.oracle import compare
from vaestudy.registry.families import family_of
from vaestudy.tables import Col, format_table

GOAL_VS_DECODE = 1.3  # issue 21: an exact streaming decode at least this many times faster than decode() on a GPU
EXACT_TOL = 1e-5  # max abs (relative to the output's scale) within which a lever is fp32 reordering, i.e. exact


@dataclass(frozen=True)
class Lever:
    name: str
    what: str
    needs_cuda: bool


LEVERS: dict[str, Lever] = {lv.name: lv for lv in (
    Lever("compile", "torch.compile of the decoder, static shapes: one graph per chunk signature", False),
    Lever("bf16", "model and latent in bfloat16", False),
    Lever("fp16", "model and latent in float16", False),
    Lever("channels_last_3d", "weights and activations in channels_last_3d memory format", False),
    Lever("cudnn.benchmark", "cuDNN algorithm search per convolution shape", True),
    Lever("cuda graph", "the steady chunk captured as a CUDA graph and replayed", True),
)}
BASELINES = ("decode()", "exact stream")
# max abs a dtype lever may differ from the fp32 decode (output scale 1): 32 units of the dtype's roundoff (2^-8 for
# bf16, 2^-11 for fp16), rounding accumulating through the decoder's depth; fp32 reorderings stay within EXACT_TOL
DTYPE_TOL = {"bf16": 32 * 2 ** -8, "fp16": 32 * 2 ** -11}


def lever_plan(device: str | torch.device) -> list[dict]:
    """Which levers apply on ``device``: ``{"lever", "what", "applies", "why"}`` per lever, in table order."""
    dev = torch.device(device)
    cuda = dev.type == "cuda" and torch.cuda.is_available()
    out = []
    for lv in LEVERS.values():
        ok = cuda or not lv.needs_cuda
        out.append({"lever": lv.name, "what": lv.what, "applies": ok,
                    "why": "" if ok else "skipped: needs CUDA"})
    return out


def check_levers(names) -> list[str]:
    """``names`` (None: all) validated against :data:`LEVERS`; ValueError naming the unknown ones."""
    if names is None:
        return list(LEVERS)
    bad = [n for n in names if n not in LEVERS]
    if bad:
        raise ValueError(f"levers={bad} are unknown; valid: {', '.join(LEVERS)}")
    return list(names)


# ---------------------------------------------------------------------------------------------
# one decode through the stream, with a lever applied
# ---------------------------------------------------------------------------------------------
def lever_subject(family) -> str:
    """What the levers act on for ``family``: its exact stream where it has one, else its own ``decode()`` (a
    stream that is not exact, or no cache: a lever on it would be judged against a different decode)."""
    return "exact stream" if family.streams_exactly else "decode()"


def stream_decode(vae, z: torch.Tensor, chunk: int, *, step: Callable | None = None) -> torch.Tensor:
    """The whole video through a fresh exact stream, ``chunk`` latent frames per step (``step(stream, z_chunk)``
    replaces ``stream.step``)."""
    family = family_of(vae)
    clear_vae_cache(vae)
    stream = open_stream(vae)
    outs = []
    with torch.no_grad():
        for a, b in chunk_plan(family, z.shape[2], chunk):
            outs.append(step(stream, z[:, :, a:b]) if step else stream.step(z[:, :, a:b]))
    clear_vae_cache(vae)
    return torch.cat(outs, dim=2)


def call_signatures(vae, z: torch.Tensor, chunk: int, subject: str = "exact stream") -> list[tuple]:
    """The decoder call signatures of one decode of ``subject`` (the stream, or ``decode()``): (input shape,
    first-chunk flag, cache entry shapes), in call order. ``torch.compile(dynamic=False)`` builds one graph per
    distinct signature."""
    seen = []

    def hook(module, args, kwargs):
        x = args[0] if args else kwargs.get("x")
        cache = kwargs.get("feat_cache", kwargs.get("conv_cache"))
        entries = tuple(tuple(c.shape) if isinstance(c, torch.Tensor) else type(c).__name__ for c in cache) \
            if isinstance(cache, list) else type(cache).__name__
        seen.append((tuple(x.shape), bool(kwargs.get("first_chunk", False)), entries))

    handle = vae.decoder.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            stream_decode(vae, z, chunk) if subject == "exact stream" else own_decode(vae, z)
    finally:
        handle.remove()
    return seen


@contextlib.contextmanager
def compiled_decoder(vae, backend: str = "inductor"):
    """``vae.decoder`` replaced by ``torch.compile(decoder, dynamic=False)`` with dynamo's state reset; yields a
    dict whose ``compiles`` (frames compiled) and ``graphs`` (unique graphs) are filled on exit."""
    from torch._dynamo.utils import counters  # torch's own compile counters; imported where compile is used

    stats: dict = {}
    original = vae.decoder
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(original, backend=backend, dynamic=False)
    limit = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"
    with torch._dynamo.config.patch({limit: 64}):
        vae.decoder = compiled
        try:
            yield stats
        finally:
            vae.decoder = original
            stats["compiles"] = int(counters["frames"]["ok"])
            stats["graphs"] = int(counters["stats"]["unique_graphs"])
            stats["graph_breaks"] = int(sum(counters["graph_break"].values()))


@contextlib.contextmanager
def cudnn_benchmark(on: bool = True):
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


class GraphedStep:
    """A stream step that, once the cache has reached its steady shapes, replays a CUDA graph of the decoder call.

    The graph reads a static input buffer and the cache entries as they were at capture; after each replay the
    cache it wrote is copied back into those entries, so the next replay continues the stream."""

    def __init__(self):
        self.graph = None
        self.last_sig = None

    def __call__(self, stream, z):
        if not isinstance(stream, FeatCacheStream) or not stream.started:
            return stream.step(z)
        x = stream.vae.post_quant_conv(z)
        sig = (tuple(x.shape), tuple(tuple(c.shape) if isinstance(c, torch.Tensor) else None for c in stream.cache))
        if self.graph is None and sig == self.last_sig:  # two calls alike: the steady chunk
            self._capture(stream, x)
        self.last_sig = sig
        if self.graph is None or sig != self.sig:
            out = stream.vae.decoder(x, feat_cache=stream.cache, feat_idx=[0])
        else:
            self.x_in.copy_(x)
            self.graph.replay()
            for dst, src in zip(self.cache_in, self.cache_out):
                if isinstance(dst, torch.Tensor):
                    dst.copy_(src)
            stream.cache[:] = self.cache_in
            out = self.out.clone()
        return out.clamp(-1.0, 1.0) if stream.clamp else out

    def _capture(self, stream, x):
        self.sig = (tuple(x.shape), tuple(tuple(c.shape) if isinstance(c, torch.Tensor) else None
                                          for c in stream.cache))
        self.x_in = x.clone()
        self.cache_in = [c.clone() if isinstance(c, torch.Tensor) else c for c in stream.cache]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up on a side stream, as capture requires
            stream.vae.decoder(self.x_in, feat_cache=[c.clone() if isinstance(c, torch.Tensor) else c
                                                      for c in self.cache_in], feat_idx=[0])
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        cache = list(self.cache_in)
        with torch.cuda.graph(self.graph):
            self.out = stream.vae.decoder(self.x_in, feat_cache=cache, feat_idx=[0])
        self.cache_out = cache
        stream.cache[:] = self.cache_in  # the capture did not run: the cache is still the one before this call


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------
def _cast(vae, z, *, dtype=None, memory_format=None):
    v = copy.deepcopy(vae)
    if dtype is not None:
        v = v.to(dtype=dtype)
        z = z.to(dtype)
    if memory_format is not None:  # only 5-D weights (the Conv3d kernels) have a 3-D channels-last layout
        for p in v.parameters():
            if p.ndim == 5:
                p.data = p.data.contiguous(memory_format=memory_format)
        z = z.contiguous(memory_format=memory_format)
    v.weights_source = getattr(vae, "weights_source", "unknown")
    v._vaestudy_family = family_of(vae)
    return v, z


def _runners(vae, z, chunk, names, backend, subject="exact stream") -> tuple[dict[str, Callable], dict, dict[str, str]]:
    """Callables decoding the whole latent, one per row; per-lever context (entered once around the run)."""
    def run(v, zz):
        if subject == "exact stream":
            return stream_decode(v, zz, chunk)
        with torch.no_grad():
            return own_decode(v, zz)

    runners = {"decode()": lambda: own_decode(vae, z)}
    if subject == "exact stream":
        runners["exact stream"] = lambda: stream_decode(vae, z, chunk)
    contexts: dict[str, contextlib.AbstractContextManager] = {}
    skipped: dict[str, str] = {}
    plan = {p["lever"]: p for p in lever_plan(z.device)}
    for name in names:
        if not plan[name]["applies"]:
            skipped[name] = plan[name]["why"]
            continue
        if name in ("bf16", "fp16"):
            v, zz = _cast(vae, z, dtype=getattr(torch, {"bf16": "bfloat16", "fp16": "float16"}[name]))
            runners[name] = lambda v=v, zz=zz: run(v, zz)
        elif name == "channels_last_3d":
            v, zz = _cast(vae, z, memory_format=torch.channels_last_3d)
            runners[name] = lambda v=v, zz=zz: run(v, zz)
        elif name == "compile":
            v, _ = _cast(vae, z)
            contexts[name] = (v, backend)
            runners[name] = lambda v=v: run(v, z)
        elif name == "cudnn.benchmark":
            runners[name] = lambda: _with(cudnn_benchmark(True), lambda: run(vae, z))
        elif name == "cuda graph" and subject != "exact stream":
            skipped[name] = "skipped: captures the steady chunk of an exact stream"
        elif name == "cuda graph":
            runners[name] = lambda: stream_decode(vae, z, chunk, step=GraphedStep())
    return runners, contexts, skipped


def _with(ctx, fn):
    with ctx:
        return fn()


def measure_levers(vae, *, frames: int, size: tuple[int, int], chunk: int | None = None, levers=None,
                   repeats: int = 3, warmup: int = 1, seed: int = 0, compile_backend: str = "inductor") -> dict:
    """Every lever of ``levers`` (default all) on the exact stream of ``vae`` (an fp32 model), beside the plain
    stream and ``decode()``, on one seeded latent of ``frames`` x ``size`` pixels; ``chunk`` latent frames per step
    (default the family's). A family without an exact stream has its levers act on its own ``decode()`` instead
    (:func:`lever_subject`; ``subject`` in the result). Returns ``rows`` (see :func:`levers_table`), the compile
    statistics and the call signatures."""
    family = family_of(vae)
    subject = lever_subject(family)
    if model_device_dtype(vae)[1] != torch.float32:
        raise ValueError(f"the model is {model_device_dtype(vae)[1]}; pass the fp32 model (the dtype levers cast "
                         "copies of it, and errors are measured against its fp32 decode())")
    for name, v in (("repeats", repeats), ("warmup", warmup)):
        if not isinstance(v, int) or isinstance(v, bool) or v < (1 if name == "repeats" else 0):
            raise ValueError(f"{name}={v!r} must be an integer >= {1 if name == 'repeats' else 0}")
    names = check_levers(levers)
    chunk = family.default_chunk if chunk is None else chunk
    z = random_latent(vae, frames, size, seed)
    if subject == "exact stream":
        chunk_plan(family, z.shape[2], chunk)  # validates chunk before any decode
    device = z.device
    runners, contexts, skipped = _runners(vae, z, chunk, names, compile_backend, subject)
    signatures = call_signatures(vae, z, chunk, subject)
    compile_stats: dict = {}
    outputs, first_s, times = {}, {}, {k: [] for k in runners}
    with contextlib.ExitStack() as stack:
        if "compile" in contexts:
            v, backend = contexts["compile"]
            compile_stats = stack.enter_context(compiled_decoder(v, backend))
        clock = Clock(device)
        for k, fn in runners.items():  # first call: compiles, captures, picks algorithms
            clock.lap()
            outputs[k] = fn().float()
            first_s[k] = clock.lap()[0]
        for _ in range(warmup - 1 if warmup else 0):
            for fn in runners.values():
                fn()
        for _ in range(repeats):
            for k, fn in runners.items():
                clock.lap()
                fn()
                times[k].append(clock.lap()[0])
    ref = outputs["decode()"]
    base = {b: statistics.median(times[b]) for b in BASELINES if b in times}
    rows = []
    for k in [b for b in BASELINES if b in runners] + names:
        if k in skipped:
            rows.append({"lever": k, "status": skipped[k]})
            continue
        med = statistics.median(times[k])
        c = compare(ref, outputs[k])
        row = {"lever": k, "status": "measured", "median_s": med, "min_s": min(times[k]), "max_s": max(times[k]),
               "first_s": first_s[k], "vs_decode": base["decode()"] / med, "max_abs": c["max_abs"],
               "psnr_db": c["psnr_db"]}
        if "exact stream" in base:
            row["vs_stream"] = base["exact stream"] / med
        if k == "compile":
            row.update(compile_s=max(0.0, first_s[k] - med), **compile_stats)
        rows.append(row)
    scale = max(1.0, float(ref.abs().max()))
    for r in rows:
        if r["status"] == "measured":
            r["exact"] = r["max_abs"] <= EXACT_TOL * scale
    measured = [r for r in rows if r["status"] == "measured" and r["lever"] != "decode()"] or rows[:1]
    best = max(measured, key=lambda r: r["vs_decode"])
    exact = max((r for r in measured if r["exact"]), key=lambda r: r["vs_decode"], default=rows[0])
    return {"model": family.name, "subject": subject, "frames": frames, "size": tuple(size), "chunk": chunk,
            "latent_frames": int(z.shape[2]), "device": str(device), "repeats": repeats, "rows": rows,
            "signatures": signatures, "distinct_signatures": len(set(signatures)), "compile_backend": compile_backend,
            "best": best["lever"], "best_vs_decode": best["vs_decode"],
            "best_exact": exact["lever"], "best_exact_vs_decode": exact["vs_decode"],
            "meets_goal": exact["vs_decode"] >= GOAL_VS_DECODE}


def levers_table(result: dict, *, markdown: bool = False) -> str:
    """The rows of :func:`measure_levers`: seconds (median, min-max), speed-ups, error vs the fp32 decode()."""
    def num(key, spec):
        return Col(key, lambda r: format(r[key], spec) if key in r and r[key] is not None else "-")
    cols = [Col("lever"), num("median_s", ".3f"),
            Col("min-max s", lambda r: f"{r['min_s']:.3f}-{r['max_s']:.3f}" if "min_s" in r else "-"),
            Col("x stream", lambda r: f"{r['vs_stream']:.2f}" if "vs_stream" in r else "-"),
            Col("x decode()", lambda r: f"{r['vs_decode']:.2f}" if "vs_decode" in r else "-"),
            Col("max abs", lambda r: f"{r['max_abs']:.2g}" if "max_abs" in r else "-"),
            Col("PSNR dB", lambda r: f"{r['psnr_db']:.1f}" if "psnr_db" in r else "-"),
            Col("status", lambda r: r["status"] + (f"; compile {r['compile_s']:.1f} s, {r['compiles']} compiles"
                                                   if "compile_s" in r else ""))]
    return format_table(result["rows"], cols, markdown=markdown)


def levers_verdict(result: dict) -> str:
    """The best measured ratios against ``decode()`` (exact levers, and any), the goal judged for exact levers only
    and on a GPU only (where the issue sets it); never more than was measured."""
    word = "reaches" if result["meets_goal"] else "stays below"
    where = "" if result["device"].startswith("cuda") else " (the goal is set for a GPU; this is the CPU's figure)"
    on = "" if result.get("subject", "exact stream") == "exact stream" else " acting on the family's own decode()"
    text = (f"on {result['device']}{on}, the fastest exact lever ({result['best_exact']}) runs at "
            f"{result['best_exact_vs_decode']:.2f}x decode()'s speed, which {word} the {GOAL_VS_DECODE}x goal{where}")
    if result["best"] != result["best_exact"]:
        text += (f"; the fastest of all, {result['best']}, reaches {result['best_vs_decode']:.2f}x but is not exact "
                 f"(max abs above {EXACT_TOL:g})")
    rows = {r["lever"]: r for r in result.get("rows", ()) if r.get("status") == "measured"}
    dec, fast = rows.get("decode()"), rows.get(result["best_exact"])
    if dec and fast and fast is not dec and fast["min_s"] <= dec["max_s"] and dec["min_s"] <= fast["max_s"]:
        text += (f"; {result['best_exact']}'s min-max seconds overlap decode()'s, so its ratio is within this run's "
                 "spread")
    if result.get("compile_backend") == "eager" and "compile" in (result["best_exact"], result["best"]):
        text += ("; compile ran with the eager backend, which only traces the decoder, so its ratio is timing noise, "
                 "not a speed-up")
    return text + f". Medians of {result['repeats']} interleaved repeats."

