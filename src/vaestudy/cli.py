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


def cmd_report(args) -> int:
    from vaestudy.report import build_report

    return build_report(model=args.model, weights=args.weights, device=args.device, fast=args.fast,
                        notebooks=args.notebooks)


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

    p = sub.add_parser("report", help="execute every notebook into build/ and export HTML into reports/")
    p.add_argument("--model", default=None, help="model name passed to every notebook (default: each notebook's own)")
    p.add_argument("--weights", default=None)
    p.add_argument("--device", default=None)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--fast", dest="fast", action="store_true", default=True, help="small sizes (default)")
    g.add_argument("--full", dest="fast", action="store_false", help="the notebooks' full sizes")
    p.add_argument("--notebooks", nargs="*", default=None, help="only these notebooks (file names)")
    p.set_defaults(func=cmd_report)
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
