"""``vaestudy`` command line: thin wrappers over the package (each subcommand one function)."""

from __future__ import annotations

import argparse
import sys
import time

import torch


def _model_args(p: argparse.ArgumentParser, *, model="wan2.1", weights="random") -> None:
    from vaestudy.models import FAMILIES, WEIGHT_SOURCES

    p.add_argument("--model", default=model, choices=list(FAMILIES))
    p.add_argument("--weights", default=weights, choices=list(WEIGHT_SOURCES))
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--seed", type=int, default=0)


def cmd_decode_check(args) -> int:
    from vaestudy.experiments import format_table, parse_size, random_latent, strategy_table
    from vaestudy.models import get_family, load_vae

    size = parse_size(args.size)
    family = get_family(args.model)
    family.check_frames(args.frames)
    family.latent_shape(args.frames, *size)  # validate before loading anything
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    vae = load_vae(args.model, args.weights, device=args.device, dtype=getattr(torch, args.dtype), seed=args.seed)
    z = random_latent(vae, args.frames, size, seed=args.seed)
    print(f"{args.model} ({args.weights} weights) on {args.device}, {args.dtype}: latent {tuple(z.shape)} -> "
          f"{args.frames} frames at {size[0]}x{size[1]}; torch threads {torch.get_num_threads()}")
    rows = strategy_table(vae, z, chunk=args.chunk, overlap=args.overlap)
    print(format_table(rows))
    print(f"(errors against the family's own decode(); total {time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_probe(args) -> int:
    import json

    from vaestudy.compare import ONE_8BIT_LEVEL
    from vaestudy.experiments import random_latent
    from vaestudy.models import get_family, load_vae
    from vaestudy.probe import minimal_overlap, receptive_field

    family = get_family(args.model)
    t, h, w = args.latent
    family.check_latent_frames(t)
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
    if args.tile:
        s = family.spatial_compression
        z = random_latent(vae, family.pixel_frames(t), (h * s, w * s), seed=args.seed)
        mo = minimal_overlap(vae, z, tile=args.tile, tol=ONE_8BIT_LEVEL, overlaps=range(0, args.tile, args.step))
        for row in mo["sweep"]:
            print(f"  tile {args.tile}, overlap {row['overlap']:>2}: max |err| {row['max_abs']:.4f}, PSNR {row['psnr_db']:.1f} dB")
        print(f"  smallest overlap within one 8-bit level ({ONE_8BIT_LEVEL:.4f}): {mo['minimal_overlap']}")
        out["minimal_overlap"] = mo
    if args.json:
        print(json.dumps(out))
    return 0


def cmd_report(args) -> int:
    from vaestudy.report import build_report

    return build_report(model=args.model, weights=args.weights, device=args.device, fast=args.fast,
                        notebooks=args.notebooks)


def cmd_bench(args) -> int:
    from vaestudy import bench as B

    configs = B.build_configs(model=args.model, weights=args.weights, frames=args.frames, sizes=args.size,
                              strategies=args.strategies, chunk=args.chunk, tile=args.tile, overlap=args.overlap,
                              consumers=args.consumer, repeats=args.repeats, warmup=args.warmup, device=args.device,
                              dtype=args.dtype, seed=args.seed)  # ValueError here, before any model load
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"threads={args.threads} must be >= 1")
        torch.set_num_threads(args.threads)
    env = B.environment(args.device, args.dtype)
    print(f"{args.model} ({args.weights} weights) on {args.device} [{env['device_name']}], {args.dtype}, "
          f"{env['threads']} threads, torch {env['torch']}, diffusers {env['diffusers']}, load average {env['loadavg']}")
    peak = None
    if not args.no_flops:
        mp = B.machine_peak(args.device, args.dtype)
        peak = mp["peak_flops"]
        print(f"machine peak: matmul {mp['matmul_flops'] / 1e9:.1f} GFLOP/s, conv3d {mp['conv3d_flops'] / 1e9:.1f} GFLOP/s")
    records = B.sweep(configs, args.out, isolate=args.isolate and not args.interleave, flops=not args.no_flops,
                      machine_peak_flops=peak, resume=not args.fresh, interleave=args.interleave)
    resumed = sum(r["resumed"] for r in records)
    print(B.format_summary(records))
    print(f"{len(records) - resumed} measured, {resumed} resumed from {args.out}; repeats {args.repeats} after "
          f"{args.warmup} warm-up; memory: {records[0].get('memory_method')}"
          f"{' in this process, repeats interleaved across configurations' if args.interleave else ' in a fresh process per configuration' if args.isolate else ' in this process'}")
    return 0


def cmd_plan(args) -> int:
    from vaestudy import planner as P
    from vaestudy.bench import ResultStore
    from vaestudy.experiments import parse_size
    from vaestudy.models import get_family

    size = parse_size(args.size)
    get_family(args.model).latent_shape(args.frames, *size)
    budget = P.parse_bytes(args.memory_budget)
    store = ResultStore(args.results)
    records = store.load()
    if not records:
        raise ValueError(f"results={args.results!r} holds no measurements; run `vaestudy bench --out {args.results}` first")
    cm = P.fit_cost_model(records, args.model, device=args.device, dtype=args.dtype)
    errs = P.holdout_errors(records, args.model, device=args.device, dtype=args.dtype)
    es = P.error_summary(errs)
    result = P.plan(cm, args.frames, size, budget, keep_output=args.keep_output)
    n = len(P.usable(records, args.model))
    print(f"cost model of {args.model} on {cm.device}/{cm.dtype} from {n} measurements in {args.results}; "
          f"weights {cm.model_bytes / 2**20:.0f} MiB counted in the budget")
    print(f"held-out (leave-one-out) prediction error over {es['n']} points: latency median {es['time_median']:.1%}, "
          f"max {es['time_max']:.1%} ({es['time_within_25pct']:.0%} within 25%); memory median {es['memory_median']:.1%}, "
          f"max {es['memory_max']:.1%}")
    if args.verbose:
        for e in errs:
            print(f"  {e['label']:<34} {e['frames']:>3}x{e['size'][0]}x{e['size'][1]}  {e['seconds']:.2f} s -> "
                  f"{e['pred_seconds']:.2f} s ({e['time_err']:+.0%})"
                  + (f"  {e['bytes'] / 2**20:.0f} -> {e['pred_bytes'] / 2**20:.0f} MiB ({e['memory_err']:+.0%})"
                     if e["memory_err"] is not None else ""))
    print(f"{'':2}{'strategy':<58} {'pred s':>8} {'pred MiB':>9}  fits {budget / 2**30:.2f} GiB")
    for r in result["rows"][: args.top]:
        print(f"{'*' if r is result['best'] else ' ':2}{P.describe(r):<58} {r['seconds']:>8.2f} "
              f"{r['total_bytes'] / 2**20:>9.0f}  {'yes' if r['fits'] else 'no'}")
    best = result["best"]
    if best is None:
        low = min(result["rows"], key=lambda r: r["total_bytes"])
        print(f"nothing is predicted to fit {args.memory_budget}; the smallest is {P.describe(low)} at "
              f"{low['total_bytes'] / 2**30:.2f} GiB")
        return 1
    print(f"recommended: {P.describe(best)} — predicted {best['seconds']:.2f} s, "
          f"{best['total_bytes'] / 2**30:.2f} GiB (decode {best['bytes'] / 2**30:.2f} GiB + weights)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaestudy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("decode-check", help="every decode strategy on one latent, errors against the full decode")
    _model_args(p)
    p.add_argument("--frames", type=int, default=17)
    p.add_argument("--size", default="64x64", help="HEIGHTxWIDTH in pixels")
    p.add_argument("--chunk", type=int, default=None, help="latent frames per chunk (default 1; 2 for CogVideoX)")
    p.add_argument("--overlap", type=int, default=2, help="tile overlap in latent pixels")
    p.set_defaults(func=cmd_decode_check)

    p = sub.add_parser("probe", help="receptive field of the decoder and the tile overlap it implies")
    _model_args(p)
    p.add_argument("--latent", type=int, nargs=3, default=[3, 16, 16], metavar=("T", "H", "W"),
                   help="probe latent size (frames, height, width)")
    p.add_argument("--share", type=float, default=0.99, help="share of gradient mass that defines the radius")
    p.add_argument("--tile", type=int, default=0, help="also sweep tile overlap for this tile size (latent px)")
    p.add_argument("--step", type=int, default=2, help="overlap step of the sweep")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("report", help="execute every notebook into build/ and export HTML into reports/")
    p.add_argument("--model", default=None, help="model name passed to every notebook (default: each notebook's own)")
    p.add_argument("--weights", default=None)
    p.add_argument("--device", default=None)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--fast", dest="fast", action="store_true", default=True, help="small sizes (default)")
    g.add_argument("--full", dest="fast", action="store_false", help="the notebooks' full sizes")
    p.add_argument("--notebooks", nargs="*", default=None, help="only these notebooks (file names)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("bench", help="time and measure memory of decode strategies; results appended to a JSONL store")
    _model_args(p)
    p.add_argument("--frames", default="17", help="pixel frames, or a comma list (17,33,65)")
    p.add_argument("--size", default="64x64", help="HEIGHTxWIDTH in pixels, or a comma list")
    p.add_argument("--strategies", default="full,tiled,chunked,tiled+chunked",
                   help="comma list of full, tiled, chunked, tiled+chunked, chunked-naive")
    p.add_argument("--chunk", type=int, default=None, help="latent frames per chunk (default 1; 2 for CogVideoX)")
    p.add_argument("--tile", type=int, default=None, help="tile size in latent px (default: a 2x2 plan)")
    p.add_argument("--overlap", type=int, default=None, help="tile overlap in latent px (default 2)")
    p.add_argument("--consumer", default="auto", help="comma list of discard, keep, video (auto: streams discard, "
                   "full/tiled keep)")
    p.add_argument("--repeats", type=int, default=3)
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
    p.add_argument("--model", default="wan2.1")
    p.add_argument("--frames", type=int, default=81)
    p.add_argument("--size", default="480x832", help="HEIGHTxWIDTH in pixels")
    p.add_argument("--memory-budget", default="8GiB", help="weights + decode peak, e.g. 8GiB, 512MB")
    p.add_argument("--results", default="results/bench.jsonl")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    p.add_argument("--keep-output", action="store_true", help="the whole video must stay in memory")
    p.add_argument("--top", type=int, default=8, help="candidates to print")
    p.add_argument("--verbose", action="store_true", help="print every held-out prediction")
    p.set_defaults(func=cmd_plan)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"vaestudy {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
