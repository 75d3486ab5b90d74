"""Running measurements: one decode timed and probed, repeats interleaved, fresh-interpreter isolation, sweeps that resume."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import statistics
import uuid
from typing import Iterable, Iterator

import torch
from torch.utils.flop_counter import FlopCounterMode

from vaestudy.bench.config import BenchConfig, config_key, validate_config
from vaestudy.bench.consumers import open_consumer
from vaestudy.bench.environment import environment, utc_now
from vaestudy.bench.memory import PeakMemory, exact_rss, measure_peak
from vaestudy.bench.roofline import fraction_of_peak
from vaestudy.bench.store import ResultStore, _json_default
from vaestudy.clock import Clock, now
from vaestudy.decode import (
    strategies,
)
from vaestudy.decode.common import clear_vae_cache, random_latent
from vaestudy.devices import same_device
from vaestudy.registry.families import get_family
from vaestudy.registry.load import load_vae


# ---------------------------------------------------------------------------------------------
# running one strategy
# ---------------------------------------------------------------------------------------------
def iter_strategy(vae, z: torch.Tensor, cfg: BenchConfig) -> Iterator[torch.Tensor]:
    """Pixel frames of ``cfg.strategy`` as they become final (one tensor for full and tiled)."""
    for ch in strategies.iter_strategy(cfg.strategy, vae, z, **cfg.params()):
        yield ch.frames


def run_once(vae, z: torch.Tensor, cfg: BenchConfig, *, memory: bool = False, flops: bool = False) -> dict:
    """One decode: wall (s), first frame (s), per-chunk latency (s), consumer time (s); with ``memory``
    the peak bytes, with ``flops`` the FLOP count (both make the run unfit for timing statistics)."""


    device = z.device
    clear_vae_cache(vae)
    probe = PeakMemory(device)
    timer = Clock(device)
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


def _summary_stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _load_for(cfg: BenchConfig, vae):

    dtype = getattr(torch, cfg.dtype)
    t = now()
    if vae is None:
        vae = load_vae(cfg.model, cfg.weights, device=cfg.device, dtype=dtype, seed=cfg.seed)
    else:
        p = next(vae.parameters())
        if not same_device(p.device, cfg.device) or p.dtype != dtype:
            raise ValueError(f"vae is {p.dtype} on {p.device} but the config asks {cfg.dtype} on {cfg.device}")
    weights = getattr(vae, "weights_source", cfg.weights)
    if weights != cfg.weights:
        raise ValueError(f"config weights={cfg.weights!r} but the model passed in has weights={weights!r}")
    return vae, now() - t


def _prepare(vae, cfg: BenchConfig, flops: bool):
    """Latent, then the untimed decodes: the first probes peak memory (and counts FLOPs), the rest warm up."""

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
    proc = subprocess.run([sys.executable, "-m", "vaestudy.bench.runner"], input=json.dumps(job, default=_json_default),
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


if __name__ == "__main__":
    import sys

    sys.exit(_child_main())


def count_flops(vae, z: torch.Tensor, cfg: BenchConfig) -> int:
    """FLOPs of one decode (torch.utils.flop_counter; convolutions and matmuls, 2 per multiply-add)."""
    return run_once(vae, z, cfg, flops=True)["flops"]
