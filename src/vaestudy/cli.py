"""``vaestudy`` command line: thin wrappers over the package (each subcommand one function).

Longer than 500 lines for a reason: it is the only place that parses strings, so every subcommand's options, their
help and defaults, and their checks before any model loads sit here, one block per subcommand.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import torch

from vaestudy import bench as B
from vaestudy.bench import planner as P
from vaestudy.bench.levers import check_levers
from vaestudy.bench.store import ResultStore
from vaestudy.decode import decode_full
from vaestudy.decode.common import check_own_tiles, fit_own_tiles, random_latent
from vaestudy.decode.streams import latent_frames_streamed, stream_plan
from vaestudy.decode.tiled import default_tile_plan
from vaestudy.devices import canonical_name, check_device
from vaestudy.guide.comparisons import format_strategy_table, strategy_table
from vaestudy.guide.sources import seed_pipeline
from vaestudy.measure.oracle import ONE_8BIT_LEVEL
from vaestudy.measure.probe import minimal_overlap, receptive_field
from vaestudy.pipelines.distributed import DistributedRunError, launch
from vaestudy.pipelines.exact_split import LAUNCHERS as SPLIT_LAUNCHERS
from vaestudy.pipelines.exact_split import compare_split_methods, format_split_rows
from vaestudy.pipelines.overlap import format_overlap_rows, overlap_sweep
from vaestudy.registry.families import DEFAULT_FAMILY, FAMILIES, get_family
from vaestudy.registry.load import (
    WEIGHT_SOURCES,
    WeightsUnavailable,
    check_weight_source,
    load_vae,
)
from vaestudy.report import build_report

# help texts read the registry's rules (a new family shows up here without an edit)
FRAME_RULES = "; ".join(f"{f.name} {f.frame_rule_text}" for f in FAMILIES.values())
CHUNK_DEFAULTS = ", ".join(f"{f.name} {f.default_chunk}" for f in FAMILIES.values() if f.streamable)

def _device(text: str) -> str:
    """--device: any spelling (cpu, cpu:0, cuda, cuda:1) to one; whether it exists is checked when a command runs."""
    try:
        return canonical_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# commands that only name a device (plan reads records taken elsewhere); every other one runs on its --device
NAMES_DEVICE_ONLY = ("plan",)


def _model_args(p: argparse.ArgumentParser, *, model=DEFAULT_FAMILY, weights="random") -> None:
    p.add_argument("--model", default=model, choices=list(FAMILIES), help="VAE family (the registry's name)")
    p.add_argument("--weights", default=weights, choices=list(WEIGHT_SOURCES),
                   help="pretrained: hub weights; random: full-size config, seeded init; tiny: small config; "
                        "embedded: the small models trained in-project")
    p.add_argument("--device", default="cpu", type=_device, help="cpu, cpu:0, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                   help="weights and activations")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights and latents")


# decode-check's defaults, per family: at least this many pixel frames (the family's next valid count) and this many
# pixels a side (at least two overlapping tiles per axis, on the family's own tile grid where decode() has one)
CHECK_FRAMES, CHECK_SIDE = 17, 64


def _check_defaults(family, frames: int | None, size: str | None, overlap: int) -> tuple[int, str]:
    """decode-check's --frames and --size where the reader gave none: the family's smallest valid ones."""
    s = family.spatial_compression
    if frames is None:  # and at least two stream steps: a one-step stream would be the family's own decode
        first = next(f for f in family.valid_frame_counts(CHECK_FRAMES + 8 * family.frame_rule[3]) if f >= CHECK_FRAMES)
        frames = family.pixel_frames(latent_frames_streamed(family, family.latent_shape(first, s, s)[1]))
    if size is None:
        side = s * -(-max(CHECK_SIDE, (max(overlap, 0) + 2) * s) // s)
        size = f"{side}x{side}"
    return frames, size


def cmd_decode_check(args) -> int:

    frames_given, size_given = args.frames is not None, args.size is not None
    family = get_family(args.model)
    _at_least("overlap", args.overlap, 0, "latent pixels")
    args.frames, args.size = _check_defaults(family, args.frames, args.size, args.overlap)
    size = parse_size(args.size)
    family.check_frames(args.frames)
    _, latent_frames, lh, lw = family.latent_shape(args.frames, *size)  # validate before loading anything
    default_tile_plan((lh, lw), args.overlap)  # the tiled rows must really tile
    if args.chunk is not None:
        stream_plan(family, latent_frames, args.chunk)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    vae = load_vae(args.model, args.weights, device=args.device, dtype=torch.float32, seed=args.seed)
    if frames_given and size_given:
        check_own_tiles(vae, (latent_frames, lh, lw))  # a tiles-only decode(): refuse a latent off its grid
    else:  # a default grows to the grid of a tiles-only decode() (read from the model's config), and says so
        t, h, w = fit_own_tiles(vae, (latent_frames, lh, lw))
        if (t, h, w) != (latent_frames, lh, lw):
            check_own_tiles(vae, (latent_frames if frames_given else t, lh if size_given else h,
                                  lw if size_given else w))
            s = family.spatial_compression
            args.frames = args.frames if frames_given else family.pixel_frames(t)
            size = size if size_given else (h * s, w * s)
            print(f"(default size raised to {family.name}'s own 3-D tile grid: {args.frames} frames at "
                  f"{size[0]}x{size[1]})")
    reference = None
    if args.dtype != "float32":  # the error a lower precision adds, against fp32 with the same weights and latent
        reference = decode_full(vae, random_latent(vae, args.frames, size, seed=args.seed)).video
        vae = vae.to(dtype=getattr(torch, args.dtype))  # what load_vae does for a dtype: build in fp32, then cast
    z = random_latent(vae, args.frames, size, seed=args.seed)
    print(f"{args.model} ({args.weights} weights) on {args.device}, {args.dtype}: latent {tuple(z.shape)} -> "
          f"{args.frames} frames at {size[0]}x{size[1]}; torch threads {torch.get_num_threads()}")
    rows = strategy_table(vae, z, chunk=args.chunk, overlap=args.overlap, reference=reference)
    print(format_strategy_table(rows))
    print(f"(errors against the family's own decode(); total {time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_probe(args) -> int:


    family = get_family(args.model)
    t, h, w = args.latent
    if min(args.latent) < 1:
        raise ValueError(f"latent={args.latent} must be three positive sizes (frames, height, width)")
    family.check_latent_frames(t, "latent frames")
    if not 0 < args.share < 1:
        raise ValueError(f"share={args.share} must lie in (0, 1): the share of gradient mass inside the radius")
    _at_least("tiles", args.tiles, 0)
    _at_least("step", args.step, 1, "latent pixels")
    vae = load_vae(args.model, args.weights, device=args.device, dtype=getattr(torch, args.dtype), seed=args.seed)
    t0 = time.perf_counter()
    rf = receptive_field(vae, (t, h, w), share=args.share, seed=args.seed)
    out = {k: v for k, v in rf.items() if not k.endswith("profile")}
    print(f"{args.model} ({args.weights} weights): {args.share:.0%} of the gradient of the centre pixel lies within "
          f"{rf['spatial_radius']} latent px (non-zero up to {rf['nonzero_radius']}; probe latent {h}x{w}"
          f"{', bounded by the probe size' if rf['limited_by_size'] else ''}) and {rf['temporal_reach']} latent "
          f"frame(s) back; derived overlap {rf['derived_overlap']} latent px  [{time.perf_counter() - t0:.1f} s]")
    print("  radius by share of gradient mass: " + ", ".join(f"{q:.0%}: {r}" for q, r in rf["radii"].items())
          + "; mass by distance: " + " ".join(f"{v:.3f}" for v in rf["spatial_profile"]))
    if args.tiles:
        s = family.spatial_compression
        z = random_latent(vae, family.pixel_frames(t), (h * s, w * s), seed=args.seed)
        mo = minimal_overlap(vae, z, count=args.tiles, tol=ONE_8BIT_LEVEL, overlaps=range(0, min(h, w), args.step))
        for row in mo["sweep"]:
            print(f"  {args.tiles}x{args.tiles} tiles of {row['tile']}, overlap {row['overlap']:>2}: "
                  f"max |err| {row['max_abs']:.4f}, PSNR {row['psnr_db']:.1f} dB")
        print(f"  smallest overlap within one 8-bit level ({ONE_8BIT_LEVEL:.4f}): {mo['minimal_overlap']}")
        out["minimal_overlap"] = mo
    if args.json:
        _write_json(args.json, out)
    return 0


def cmd_report(args) -> int:

    if args.model is not None:
        get_family(args.model)
    if args.weights is not None:
        check_weight_source(args.weights)

    return build_report(model=args.model, weights=args.weights, device=args.device, fast=args.fast,
                        notebooks=args.notebooks, out_dir=args.out_dir, jobs=args.jobs)


def cmd_bench(args) -> int:

    configs = B.build_configs(model=args.model, weights=args.weights, frames=_int_list(args.frames, "frames"),
                              sizes=[parse_size(s) for s in _split(args.size, "size")],
                              strategies=_split(args.strategies, "strategies"), chunk=args.chunk, tile=args.tile,
                              overlap=args.overlap, consumers=_split(args.consumer, "consumer"), repeats=args.repeats, warmup=args.warmup, device=args.device,
                              dtype=args.dtype, seed=args.seed)  # ValueError here, before any model load
    _at_least("threads", args.threads, 1)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    env = B.environment(args.device, args.dtype)
    print(f"{args.model} ({args.weights} weights) on {args.device} [{env['device_name']}], {args.dtype}, "
          f"{env['threads']} threads, torch {env['torch']}, diffusers {env['diffusers']}, load average {env['loadavg']}")
    peak = None
    if not args.no_flops:
        mp = B.machine_peak(args.device, args.dtype)
        peak = mp["peak_flops"]
        print(f"machine peak: {peak / 1e9:.1f} GFLOP/s ({mp['peak_op']} {mp['peak_shape']}, best of "
              f"{len(mp['rows'])} shapes); best matmul {mp['matmul_flops'] / 1e9:.1f}, best conv3d "
              f"{mp['conv3d_flops'] / 1e9:.1f} GFLOP/s")
    records = B.sweep(configs, args.out, isolate=args.isolate and not args.interleave, flops=not args.no_flops,
                      machine_peak_flops=peak, resume=not args.fresh, interleave=args.interleave)
    resumed = sum(r["resumed"] for r in records)
    print(B.format_summary(records))
    print(f"{len(records) - resumed} measured, {resumed} resumed from {args.out}; repeats {args.repeats} after "
          f"{args.warmup} warm-up; memory: {records[0].get('memory_method')}"
          f"{' in this process, repeats interleaved across configurations' if args.interleave else ' in a fresh process per configuration' if args.isolate else ' in this process'}")
    return 0


def _threads(n) -> None:
    _at_least("threads", n, 1)
    if n is not None:
        torch.set_num_threads(n)


def cmd_levers(args) -> int:
    size = parse_size(args.size)
    levers = [] if args.levers == "none" else check_levers(_split(args.levers, "levers") if args.levers != "all" else None)
    for name in ("repeats", "frames"):
        _at_least(name, getattr(args, name), 1)
    _at_least("warmup", args.warmup, 0)
    tile_batches = _int_list(args.tile_batch, "tile_batch") if args.tile_batch else []
    for k in tile_batches:
        _at_least("tile_batch", k, 1)
    family = get_family(args.model)
    family.check_frames(args.frames)
    if not family.streams_exactly:
        raise ValueError(f"model={args.model!r} does not stream exactly; the levers are measured on the exact stream "
                         f"({', '.join(f.name for f in FAMILIES.values() if f.streams_exactly)})")
    _threads(args.threads)
    vae = load_vae(args.model, args.weights, device=args.device, seed=args.seed)
    env = B.environment(args.device, "float32")
    print(f"{args.model} ({args.weights} weights) on {args.device} [{env['device_name']}], {env['threads']} threads, "
          f"torch {env['torch']}, load average {env['loadavg']}; {args.frames} frames at {size[0]}x{size[1]}")
    for p in B.lever_plan(args.device):
        print(f"  {p['lever']:<17} {'applies' if p['applies'] else p['why']}: {p['what']}")
    out = {}
    if levers:
        res = B.measure_levers(vae, frames=args.frames, size=size, chunk=args.chunk, levers=levers,
                               repeats=args.repeats, warmup=args.warmup, seed=args.seed,
                               compile_backend=args.compile_backend)
        print(B.levers_table(res))
        print(B.levers_verdict(res))
        if "compile" in levers and any(r.get("compiles") is not None for r in res["rows"]):
            row = next(r for r in res["rows"] if r["lever"] == "compile")
            print(f"compile ({args.compile_backend}): {row['compiles']} compiles for {res['distinct_signatures']} "
                  f"distinct decoder call signatures over {len(res['signatures'])} calls, {row['graph_breaks']} graph "
                  f"breaks; first decode {row['first_s']:.2f} s, steady {row['median_s']:.3f} s")
        out["levers"] = res
    if not args.no_tiled_chunked:
        cost = B.tiled_chunked_cost(vae, frames=args.frames, size=size, chunk=args.chunk, repeats=args.repeats,
                                    warmup=args.warmup, seed=args.seed, tile_batches=tile_batches)
        print(f"tiled+chunked: {cost['tiles']} tiles {cost['params']['tile']} latent px, overlap "
              f"{cost['params']['overlap']}, {cost['chunks']} chunks of {cost['params']['chunk']} latent frames")
        print(B.cost_table(cost))
        print(B.cost_verdict(cost))
        out["tiled_chunked"] = cost
    if args.json:
        _write_json(args.json, out)
    return 0


def cmd_chunk_curve(args) -> int:
    size = parse_size(args.size)
    models = None if args.models == "all" else _split(args.models, "models")
    for name in ("repeats", "frames"):
        _at_least(name, getattr(args, name), 1)
    _at_least("max_chunk", args.max_chunk, 1)
    B.curve_configs(models, frames=args.frames, size=size, weights=args.weights, device=args.device,
                    dtype=args.dtype, repeats=args.repeats, warmup=args.warmup, seed=args.seed,
                    max_chunk=args.max_chunk)  # every ValueError before any model loads
    _threads(args.threads)
    curve = B.chunk_curve(models, frames=args.frames, size=size, store=args.out, weights=args.weights,
                          device=args.device, dtype=args.dtype, repeats=args.repeats, warmup=args.warmup,
                          seed=args.seed, max_chunk=args.max_chunk, progress=True, resume=not args.fresh)
    print(B.curve_table(curve))
    n = sum(len(p) for p in curve.values())
    resumed = sum(q["resumed"] for p in curve.values() for q in p)
    print(f"{n - resumed} points measured, {resumed} resumed from {args.out}; knee = smallest chunk at "
          f"{B.KNEE_FRACTION:.0%} of the best throughput")
    seed, ref = seed_pipeline(), B.seed_reference()
    for row in B.seed_point(curve, seed, ref):
        ours = row["ours"]
        here = (f"{ours['chunk_s']:.3f} s per steady chunk, {row['fps_share_of_best']:.0%} of the best throughput "
                f"({'at or past' if row['at_or_past_knee'] else 'before'} the knee)") if ours and ours["chunk_s"] \
            else "not on this curve (chunk not valid for it, or beyond the latent's length)"
        print(f"seed's chunk ({row['chunk']} latent frames) on {row['model']}: {here}; the seed states "
              f"{row['seed_chunk_s'] * 1000:.0f} ms at {row['seed_size'][0]}x{row['seed_size'][1]}"
              + (f", the reference measured {row['reference_chunk_s'] * 1000:.0f} ms on {row['reference_device']}"
                 if row["reference_chunk_s"] else ""))
    return 0


DEFAULT_RESULTS = "results/bench.jsonl"  # plan's records when neither --records nor --reference is given
REFERENCE_DIRS = (Path(__file__).resolve().parents[2] / "reference", Path.cwd() / "reference")  # checkout, then here


def reference_records(name: str) -> Path:
    """--reference NAME: the ``bench.jsonl`` of the folder ``reference/NAME`` of the checkout (GPU records with a
    README giving their provenance); ValueError naming the value and the folders there are."""
    folders = sorted({d.name for root in REFERENCE_DIRS if root.is_dir() for d in root.iterdir()
                      if (d / "bench.jsonl").is_file()})
    if name not in folders:
        raise ValueError(f"reference={name!r} is not a folder of bench records in reference/; valid: "
                         f"{', '.join(folders) or 'none (no reference/ folder found)'}")
    return next(root / name / "bench.jsonl" for root in REFERENCE_DIRS if (root / name / "bench.jsonl").is_file())


def cmd_plan(args) -> int:
    # every argument is checked before the records are read and fitted
    size = parse_size(args.size)
    get_family(args.model).latent_shape(args.frames, *size)
    budget = parse_bytes(args.memory_budget)
    _at_least("top", args.top, 1, "rows")
    if args.reference is not None and args.results is not None:
        raise ValueError(f"records={args.results!r} and reference={args.reference!r}: give one source of records")
    source = reference_records(args.reference) if args.reference is not None else Path(args.results or DEFAULT_RESULTS)
    filters = {"device": args.device, "dtype": args.dtype, "weights": args.weights, "hardware": args.hardware}
    store = ResultStore(source)
    records = store.load()
    if not records:
        raise ValueError(f"records={str(source)!r} holds no measurements; run `vaestudy bench --out {source}` first")
    cm = P.fit_cost_model(records, args.model, **filters)
    errs = P.holdout_errors(records, args.model, **filters)
    es = P.error_summary(errs)
    result = P.plan(cm, args.frames, size, budget, keep_output=args.keep_output, weights=args.target_weights)
    print(f"records: {cm.selection.describe()} in {source}")
    print(f"cost model of {args.model} on {cm.device}/{cm.dtype}{f' ({cm.hardware})' if cm.hardware else ''}, "
          f"{cm.weights} weights, {cm.threads} threads; weights {cm.model_bytes / 2**20:.0f} MiB counted in the budget")
    print(f"measured range: {P.range_text(cm.measured)}")
    print(P.holdout_text(es))  # the range is the line above
    if args.verbose:
        for e in errs:
            print(f"  {e['label']:<34} {e['frames']:>3}x{e['size'][0]}x{e['size'][1]}  {e['seconds']:.2f} s -> "
                  f"{e['pred_seconds']:.2f} s ({e['time_err']:+.0%})"
                  + (f"  {e['bytes'] / 2**20:.0f} -> {e['pred_bytes'] / 2**20:.0f} MiB ({e['memory_err']:+.0%})"
                     if e["memory_err"] is not None else ""))
    print(P.format_table(result, args.top))
    for w in result["warnings"]:
        print(f"warning: outside the measured range, the cost model extrapolates: {w}")
    caveat = f"; extrapolated, see the {len(result['warnings'])} warning(s) above" if result["warnings"] else ""
    best = result["best"]
    if best is None:
        low = P.smallest(result)
        print(f"nothing is predicted to fit {args.memory_budget}; the smallest is {P.describe(low)} at "
              f"{low['total_bytes'] / 2**30:.2f} GiB{caveat}")
        return 1
    print(f"recommended: {P.describe(best)} — predicted {best['seconds']:.2f} s, "
          f"{best['total_bytes'] / 2**30:.2f} GiB (decode {best['bytes'] / 2**30:.2f} GiB + weights){caveat}")
    return 0


def _write_json(path: str, obj) -> None:
    """--json PATH on every command: the record as JSON to PATH, or to stdout for '-'."""
    import json
    from pathlib import Path

    text = json.dumps(obj, default=str)
    if path == "-":
        print(text)
    else:
        Path(path).write_text(text)
        print(f"wrote {path}")


def _at_least(name: str, value, low, unit: str = "") -> None:
    """ValueError naming the option unless ``value >= low`` (checked before anything is loaded)."""
    if value is not None and not value >= low:
        raise ValueError(f"{name}={value} must be >= {low}{' ' + unit if unit else ''}")


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' → (H, W); ValueError naming the value otherwise."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size={text!r} must look like HEIGHTxWIDTH, e.g. 64x64") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"size={text!r} must be positive")
    return h, w


_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "k": 2**10, "m": 2**20, "g": 2**30}


def parse_bytes(text: str | float) -> int:
    """'8GiB', '512MB', '1.5g', 1000 → bytes; ValueError naming the value otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError(f"memory budget={text!r} must be positive")
        return int(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if m and not m.group(2):
        raise ValueError(f"memory budget={text!r} needs a unit: 8GiB, 512MB, 1000B (a bare number is ambiguous)")
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"memory budget={text!r} must look like 8GiB, 512MB or 1000B")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value <= 0:
        raise ValueError(f"memory budget={text!r} must be positive")
    return int(value)


def _split(text: str, name: str) -> list[str]:
    """'a,b' → ['a', 'b']; ValueError naming ``name`` when nothing is left."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ValueError(f"{name}={text!r} is empty")
    return items


def _int_list(text: str, name: str) -> list[int]:
    try:
        return [int(t) for t in _split(text, name)]
    except ValueError:
        raise ValueError(f"{name}={text!r} must be an integer or a comma list of integers, e.g. 17,33") from None


def _ints(text: str, name: str, n: int) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        vals = ()
    if len(vals) != n or min(vals) < 1:
        raise ValueError(f"{name}={text!r} must be {n} positive integers joined by 'x'")
    return vals


def _check_stream_args(args) -> None:
    """Every option of ``stream`` checked here, before a model loads or a rank starts."""

    family = get_family(args.model)
    _at_least("timeout", args.timeout, 1e-3, "s")
    _at_least("deadline", args.deadline, 1e-3, "s")
    _at_least("repeats", args.repeats, 1)
    _at_least("threads", args.threads, 0)
    if args.pipeline == "overlap":
        try:
            shares = [float(v) for v in args.shares.split(",")]
        except ValueError:
            raise ValueError(f"shares={args.shares!r} must be a comma list of numbers in (0, 1)") from None
        bad = [v for v in shares if not 0 < v < 1]
        if bad:
            raise ValueError(f"shares={args.shares!r}: each decode share D/(G+D) must lie in (0, 1), got {bad}")
        _at_least("chunks", args.chunks, 2)
        _at_least("every", args.every, 0, "chunks")
        _ints(args.latent_hw, "latent-hw", 2)
    elif args.pipeline == "two-device":
        family.check_frames(args.window, "window")
        h, w = _ints(args.size, "size", 2)
        family.latent_shape(args.window, h, w)
        _at_least("windows", args.windows, 1)
        _at_least("fps", args.fps, 1e-9, "frames per second")
        _at_least("send-queue", args.send_queue, 1, "windows")
        _at_least("recv-queue", args.recv_queue, 1, "windows")
        _at_least("ring-frames", args.ring_frames, 0)
        _at_least("prebuffer", args.prebuffer, 0, "s")
    else:
        t, _, _ = _ints(args.latent, "latent", 3)
        family.check_latent_frames(t, "latent frames")
        for h in args.halos.split(","):
            if not (h.isdigit() or h == "full" or h in ("rf90", "rf95", "rf99")):
                raise ValueError(f"halos={args.halos!r}: {h!r} is not a halo; valid: latent columns (0, 1, 2, ...), "
                                 "rf90, rf95, rf99, full")
        _at_least("chunk", args.chunk, 0, "latent frames")


def cmd_stream(args) -> int:
    """vaestudy stream {overlap,two-device,split}: run a pipeline and print a summary."""
    import statistics


    _check_stream_args(args)
    if args.pipeline == "overlap":

        shares = [float(v) for v in args.shares.split(",")]
        hw = _ints(args.latent_hw, "latent-hw", 2)
        vae = load_vae(args.model, args.weights, device=args.device, seed=args.seed)
        rows = overlap_sweep(vae, shares, chunks=args.chunks, latent_hw=hw, threads=args.threads or None,
                             every=args.every, repeats=args.repeats, seed=args.seed)
        print(f"decode || generate: {args.model} ({args.weights}) on {args.device}, latent {hw}, {args.chunks} chunks, "
              f"threads per side {args.threads or 'process default'}, re-encode every {args.every or 'never'}; "
              "generator = Conv3d stand-in (real compute, no meaning)")
        print(format_overlap_rows(rows))
        print("target: the decode share D/(G+D) asked for; share: the one measured (whole generator steps, timed "
              "in the run); bounds: sequential G+D(+R), overlapped max(G, D); gain = seq/ovl - 1; "
              "'slow' = stage time overlapped / alone")
        result = rows
    elif args.pipeline == "two-device":
        cfg = {"model": args.model, "weights": args.weights, "seed": args.seed, "clip": args.clip,
               "size": list(_ints(args.size, "size", 2)), "window": args.window, "windows": args.windows,
               "fps": args.fps, "send_queue": args.send_queue, "send_policy": args.send_policy,
               "recv_queue": args.recv_queue, "ring_frames": args.ring_frames, "prebuffer_s": args.prebuffer,
               "threads": args.threads or 1, "fail_rank": args.fail_rank}
        try:
            rec = launch("two-device", cfg, timeout_s=args.timeout, deadline_s=args.deadline)
        except DistributedRunError as exc:
            print(f"vaestudy stream two-device: error: {exc}", file=sys.stderr)
            return 1
        m, b = rec["median"], rec["budget"]
        lat = rec["latency_first_frame_s"]
        print(f"encode on rank 0, decode on rank 1 ({rec['backend']}): {rec['captured_windows']} windows of "
              f"{args.window} frames at {args.fps:g} fps, send policy {args.send_policy}")
        print(f"median encode {m['encode_s'] * 1e3:.1f} ms, transfer {m['transfer_s'] * 1e3:.2f} ms "
              f"({rec['window_bytes'] / 1e3:.1f} kB), decode {m['decode_s'] * 1e3:.1f} ms "
              f"(first frame {m['decode_first_frame_s'] * 1e3:.1f} ms)")
        print(f"budget fill + encode + transfer + decode = {b['total'] * 1e3:.0f} ms; measured first-frame latency "
              f"median {statistics.median(lat) * 1e3:.0f} ms (min {min(lat) * 1e3:.0f}, max {max(lat) * 1e3:.0f})"
              if lat else "no frame was shown")
        print(f"dropped windows {rec['dropped_windows']}, underruns {rec['underruns']}, shown frames {rec['shown_frames']}")
        for q in rec["queues"].values():
            print(f"  {q['name']:<14} capacity {q['capacity']:>3} ({q['policy']}): max depth {q['max_depth']}, "
                  f"dropped {q['dropped']}, producer blocked {q['blocked_s']:.2f} s")
        result = rec
    else:
        halos = [h if not h.isdigit() else int(h) for h in args.halos.split(",")]
        cfg = {"model": args.model, "weights": args.weights, "seed": args.seed,
               "latent": list(_ints(args.latent, "latent", 3)), "halos": halos, "chunk": args.chunk,
               "blend": args.blend, "threads": args.threads or 1, "repeats": args.repeats, "fail_rank": args.fail_rank}
        try:
            rec = launch("split", cfg, timeout_s=args.timeout, deadline_s=args.deadline)
        except DistributedRunError as exc:
            print(f"vaestudy stream split: error: {exc}", file=sys.stderr)
            return 1
        alone = ", ".join(f"{statistics.median(v):.2f} s with {k} thread(s)" for k, v in rec["single_s_by_threads"].items())
        print(f"width split over {rec['world']} ranks ({rec['backend']}), latent {rec['latent_shape']}, blend "
              f"{args.blend}, each rank {rec['rank_threads']} thread(s); one process alone: {alone} "
              f"(speed-up against the faster)")
        print(f"{'halo':>6} {'cols':>4} {'max |err|':>10} {'PSNR dB':>8} {'seam err':>9} {'time s':>7} {'speed-up':>8}")
        for r in rec["rows"]:
            print(f"{r['halo_label']:>6} {r['halo']:>4} {r['max_abs']:>10.2e} {r['psnr_db']:>8.1f} "
                  f"{r['seam_band_mean_abs']:>9.2e} {statistics.median(r['total_s']):>7.2f} {r['speedup']:>8.2f}")
        result = rec
    if args.json:
        _write_json(args.json, result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaestudy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("decode-check", help="every decode strategy on one latent, errors against the full decode")
    _model_args(p)
    p.add_argument("--frames", type=int, default=None,
                   help=f"pixel frames (default: the family's first valid count >= {CHECK_FRAMES} that streams in two steps or "
                        f"more; its rule: {FRAME_RULES})")
    p.add_argument("--size", default=None,
                   help=f"HEIGHTxWIDTH in pixels (default: {CHECK_SIDE}x{CHECK_SIDE}, or larger where the family needs "
                        f"it for two overlapping tiles or its own tile grid)")
    p.add_argument("--chunk", type=int, default=None, help=f"latent frames per chunk (default: the family's smallest, {CHUNK_DEFAULTS})")
    p.add_argument("--overlap", type=int, default=2, help="tile overlap in latent pixels")
    p.set_defaults(func=cmd_decode_check)

    p = sub.add_parser("probe", help="receptive field of the decoder and the tile overlap it implies")
    _model_args(p)
    p.add_argument("--latent", type=int, nargs=3, default=[3, 16, 16], metavar=("T", "H", "W"),
                   help="probe latent size (frames, height, width)")
    p.add_argument("--share", type=float, default=0.99, help="share of gradient mass that defines the radius")
    p.add_argument("--tiles", type=int, default=0, help="also sweep the overlap of N x N tiles against the full decode")
    p.add_argument("--step", type=int, default=2, help="overlap step of the sweep")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the result as JSON to PATH ('-': stdout)")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("report", help="execute every notebook into build/ and export HTML into reports/")
    p.add_argument("--model", default=None, help="model name passed to every notebook (default: each notebook's own)")
    p.add_argument("--weights", default=None, help="weight source passed to every notebook (pretrained, random, tiny, "
                   "embedded; None: each notebook's own)")
    p.add_argument("--device", default=None, type=_device, help="where the notebooks decode (default: each notebook's own, cpu)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--fast", dest="fast", action="store_true", default=True, help="small sizes (default)")
    g.add_argument("--full", dest="fast", action="store_false", help="the notebooks' full sizes")
    p.add_argument("--notebooks", nargs="*", default=None, help="only these notebooks (file names)")
    p.add_argument("--out-dir", default=None,
                   help="where build/, reports/, figures/ and results/ go (default: the checkout)")
    p.add_argument("--jobs", type=int, default=1, help="notebooks executed at once (>1: faster, but their timings "
                   "then share the machine)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("bench", help="time and measure memory of decode strategies; results appended to a JSONL store")
    _model_args(p)
    p.add_argument("--frames", default="17", help="pixel frames, or a comma list (17,33,65)")
    p.add_argument("--size", default="64x64", help="HEIGHTxWIDTH in pixels, or a comma list")
    p.add_argument("--strategies", default="full,tiled,chunked,tiled+chunked",
                   help="comma list of full, tiled, chunked, tiled+chunked, chunked-naive")
    p.add_argument("--chunk", type=int, default=None, help=f"latent frames per chunk (default: the family's smallest, {CHUNK_DEFAULTS})")
    p.add_argument("--tile", type=int, default=None, help="tile size in latent px (default: a 2x2 plan)")
    p.add_argument("--overlap", type=int, default=None, help="tile overlap in latent px (default 2)")
    p.add_argument("--consumer", default="auto", help="comma list of discard, keep, video (auto: streams discard, "
                   "full/tiled keep)")
    p.add_argument("--repeats", type=int, default=3, help="timed decodes per configuration")
    p.add_argument("--warmup", type=int, default=1, help="untimed decodes first (the first also counts FLOPs)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    p.add_argument("--out", default="results/bench.jsonl", help="JSONL results store (appended, resumed)")
    p.add_argument("--isolate", dest="isolate", action="store_true", default=True,
                   help="one fresh interpreter per configuration (default)")
    p.add_argument("--inline", dest="isolate", action="store_false", help="measure in this process (faster)")
    p.add_argument("--interleave", action="store_true", help="in this process, run repeat r of every configuration "
                   "in turn (A B A B ...) so background load drifts hit all alike")
    p.add_argument("--fresh", action="store_true", help="measure again even if the store has the configuration")
    p.add_argument("--no-flops", action="store_true", help="skip FLOP counting and the machine-peak microbenchmark")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("plan", help="fastest strategy predicted to fit a memory budget, from benchmark results")
    p.add_argument("--model", default=DEFAULT_FAMILY, choices=list(FAMILIES), help="VAE family to plan for")
    p.add_argument("--frames", type=int, default=81, help="pixel frames of the video to decode")
    p.add_argument("--size", default="480x832", help="HEIGHTxWIDTH in pixels")
    p.add_argument("--memory-budget", default="8GiB", help="weights + decode peak, with a unit: 8GiB, 512MB, 1000B")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--records", "--results", dest="results", default=None, metavar="PATH",
                     help=f"bench records (JSONL) the cost model is fitted to (default: {DEFAULT_RESULTS})")
    src.add_argument("--reference", default=None, metavar="NAME",
                     help="fit to the GPU records shipped in reference/NAME/bench.jsonl, e.g. h200-2026-11-29")
    p.add_argument("--device", default=None, type=_device, help="plan for the records of this device (default: the only one in the results)")
    p.add_argument("--hardware", default=None, metavar="NAME",
                   help="only records of a card or CPU whose name contains NAME, e.g. H200 (default: the only one)")
    p.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"],
                   help="only records of this dtype (None: the only one in the results)")
    p.add_argument("--weights", default=None, choices=list(WEIGHT_SOURCES),
                   help="only records of this weight source (None: the only one in the results)")
    p.add_argument("--target-weights", default="pretrained", choices=list(WEIGHT_SOURCES),
                   help="the weights the planned decode uses; a network of another size than the records' "
                        "(pretrained/random: full-size; tiny; embedded) is warned about")
    p.add_argument("--keep-output", action="store_true", help="the whole video must stay in memory")
    p.add_argument("--top", type=int, default=8, help="candidates to print (the recommendation is always printed)")
    p.add_argument("--verbose", action="store_true", help="print every held-out prediction")
    p.set_defaults(func=cmd_plan)

    _add_stream_parser(sub)
    _add_levers_parsers(sub)
    _add_split_exact_parser(sub)
    for p in sub.choices.values():  # every option's default in --help
        p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    return parser


def _add_levers_parsers(sub) -> None:
    exact = [f.name for f in FAMILIES.values() if f.streams_exactly]
    p = sub.add_parser("levers", help="speed levers on the exact stream (compile, dtype, channels_last_3d, cuDNN, "
                                      "CUDA graph) and tiled+chunked's cost, side by side in one run")
    p.add_argument("--model", default=exact[0], choices=exact, help="a family that streams exactly")
    p.add_argument("--weights", default="random", choices=list(WEIGHT_SOURCES), help="weight source")
    p.add_argument("--device", default="cpu", type=_device, help="cpu, cuda, cuda:1, ...")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights and the latent")
    p.add_argument("--frames", type=int, default=9, help="pixel frames")
    p.add_argument("--size", default="64x64", help="HEIGHTxWIDTH in pixels")
    p.add_argument("--chunk", type=int, default=None, help="latent frames per streamed step (default: the family's)")
    p.add_argument("--levers", default="all", help="comma list of compile, bf16, fp16, channels_last_3d, "
                                                  "cudnn.benchmark, 'cuda graph'; all; or none (only the tiled+chunked table)")
    p.add_argument("--compile-backend", default="inductor", help="torch.compile backend (eager: tracing only)")
    p.add_argument("--repeats", type=int, default=3, help="timed decodes per lever, interleaved")
    p.add_argument("--warmup", type=int, default=1, help="untimed decodes first (the first compiles)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    p.add_argument("--no-tiled-chunked", action="store_true", help="skip the tiled+chunked cost table")
    p.add_argument("--tile-batch", default="", help="extra tiled+chunked rows with at most this many tiles per "
                                                    "decoder call, a comma list (e.g. 1,2); memory against speed")
    p.add_argument("--json", default=None, metavar="PATH", help="also write every row as JSON to PATH ('-': stdout)")
    p.set_defaults(func=cmd_levers)

    p = sub.add_parser("chunk-curve", help="chunk size vs time to first frame, throughput and peak memory, every "
                                           "cached family; results appended to a JSONL store (resumes)")
    p.add_argument("--models", default="all", help="comma list of cached families, or all")
    p.add_argument("--weights", default="random", choices=list(WEIGHT_SOURCES), help="weight source")
    p.add_argument("--device", default="cpu", type=_device, help="cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"], help="model dtype")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights and the latent")
    p.add_argument("--frames", type=int, default=17, help=f"pixel frames ({FRAME_RULES})")
    p.add_argument("--size", default="64x64", help="HEIGHTxWIDTH in pixels")
    p.add_argument("--max-chunk", type=int, default=None, help="largest chunk to measure (default: every latent frame)")
    p.add_argument("--repeats", type=int, default=3, help="timed decodes per point")
    p.add_argument("--warmup", type=int, default=1, help="untimed decodes first")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    p.add_argument("--out", default="results/chunk_curve.jsonl", help="JSONL results store (appended, resumed)")
    p.add_argument("--fresh", action="store_true", help="measure again even if the store has the point")
    p.set_defaults(func=cmd_chunk_curve)


def cmd_split_exact(args) -> int:
    models = _split(args.models, "models")
    for m in models:
        get_family(m)
    ranks = _int_list(args.ranks, "ranks")
    for k in ranks:
        _at_least("ranks", k, 2)
    latent = _ints(args.latent, "latent", 3)
    _at_least("repeats", args.repeats, 1)
    _at_least("warmup", args.warmup, 0)
    records = []
    for k in ranks:
        try:
            records += compare_split_methods(models, k, latent, timeout_s=args.timeout, launcher=args.launcher,
                                               weights=args.weights, repeats=args.repeats, warmup=args.warmup,
                                               seed=args.seed)
        except (DistributedRunError, RuntimeError) as exc:
            print(f"vaestudy split-exact: error: {exc}", file=sys.stderr)
            return 1
    print(format_split_rows(records))
    if args.json:
        _write_json(args.json, records)
    return 0


def _add_split_exact_parser(sub) -> None:
    p = sub.add_parser("split-exact", help="one decode split by rows across local ranks, halos exchanged before every "
                                           "convolution, beside halo-and-crop: error, bytes exchanged, time")
    p.add_argument("--models", default=DEFAULT_FAMILY, help="comma list of registry families")
    p.add_argument("--ranks", default="2,4", help="comma list of rank counts")
    p.add_argument("--latent", default="3x16x16", help="latent FRAMESxROWSxCOLUMNS")
    p.add_argument("--weights", default="tiny", choices=list(WEIGHT_SOURCES), help="weight source")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights and the latent")
    p.add_argument("--repeats", type=int, default=3, help="timed decodes per method")
    p.add_argument("--warmup", type=int, default=1, help="untimed decodes first")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds any exchange may wait before the run ends, "
                                                               "naming the rank that stopped answering")
    p.add_argument("--launcher", default="local", choices=list(SPLIT_LAUNCHERS), help="local: forked ranks; torchrun")
    p.add_argument("--json", default=None, metavar="PATH", help="also write every record as JSON to PATH ('-': stdout)")
    p.set_defaults(func=cmd_split_exact)


def _add_stream_parser(sub) -> None:
    p = sub.add_parser("stream", help="pipelines: decode || generation, encode/decode on two ranks, split decode")
    p.add_argument("pipeline", choices=["overlap", "two-device", "split"],
                   help="overlap: decode beside generation; two-device: encode on one rank, decode on another; "
                        "split: one decode split across ranks")
    _model_args(p, weights="tiny")
    p.add_argument("--threads", type=int, default=1, help="torch threads per side/rank (0: process default)")
    p.add_argument("--repeats", type=int, default=1, help="runs per configuration")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the full record as JSON to PATH ('-': stdout)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds any collective or send/recv may wait")
    p.add_argument("--deadline", type=float, default=600.0, help="seconds the whole distributed run may take")
    p.add_argument("--fail-rank", type=int, default=-1,
                   help="testing: make this rank raise, to see how a failure ends the run (-1: none)")
    p.add_argument("--shares", default="0.2,0.5,0.8", help="overlap: decode shares D/(G+D) to sweep")
    p.add_argument("--chunks", type=int, default=6, help="overlap: chunks per run")
    p.add_argument("--latent-hw", default="4x4", help="overlap: latent HxW per chunk")
    p.add_argument("--every", type=int, default=0, help="overlap: re-encode dependency every N chunks (0: none)")
    p.add_argument("--clip", default="carphone", help="two-device: capture source (a vaestudy.data clip or 'random')")
    p.add_argument("--size", default="32x32", help="two-device: frame HEIGHTxWIDTH")
    p.add_argument("--window", type=int, default=5, help="two-device: frames per window (1 + 4k)")
    p.add_argument("--windows", type=int, default=6, help="two-device: windows captured")
    p.add_argument("--fps", type=float, default=8.0, help="two-device: capture and output frame rate")
    p.add_argument("--send-queue", type=int, default=2, help="two-device: windows the sender may hold")
    p.add_argument("--send-policy", default="block", choices=["block", "drop", "drop-oldest"],
                   help="two-device: what a full send queue does")
    p.add_argument("--recv-queue", type=int, default=2, help="two-device: windows the receiver may hold")
    p.add_argument("--ring-frames", type=int, default=0, help="two-device: output ring capacity (0: 3 windows)")
    p.add_argument("--prebuffer", type=float, default=0.0, help="two-device: playout delay (s)")
    p.add_argument("--latent", default="3x4x8", help="split: latent FRAMESxHEIGHTxWIDTH")
    p.add_argument("--halos", default="0,1,2,rf99,full", help="split: halos in latent columns, rf90/rf95/rf99, full")
    p.add_argument("--chunk", type=int, default=0, help=f"split: latent frames per streamed step (0: the family's smallest, {CHUNK_DEFAULTS})")
    p.add_argument("--blend", default="crop", choices=["crop", "linear"], help="split: how halos are joined")
    p.set_defaults(func=cmd_stream)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "device", None) and args.command not in NAMES_DEVICE_ONLY:
            check_device(args.device)  # before any model load: "CUDA is not available", not a torch traceback
        return args.func(args)
    except (ValueError, WeightsUnavailable, FileNotFoundError) as exc:  # bad input, or weights/checkout not here
        print(f"vaestudy {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
