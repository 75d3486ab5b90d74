"""Counting what a family's released model costs, on the meta device: decode FLOPs per pixel-frame, memory estimates.

:func:`count_decode_flops` builds the full-size config on ``meta`` (no memory, no arithmetic) and runs the family's
untiled decode of a 480x832 latent under ``FlopCounterMode``; FLOPs per output pixel-frame are the total over
frames x height x width of the output. :func:`regenerate` refreshes the registry's cache (``registry/cost.json``);
``python -m vaestudy.bench.cost`` runs it (``--check`` recomputes and reports differences without writing).

:func:`estimate_decode_bytes` is a lower bound on a decode's memory: the weights plus the largest single operation's
inputs and outputs, both counted on meta.
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from vaestudy.decode.common import call_decode, decoder_pass, family_decode_settings
from vaestudy.registry.cost import (
    COST_FILE,
    FamilyCost,
    build_on_meta,
    parameter_counts,
    read_cost_file,
    weight_bytes,
    write_cost_file,
)
from vaestudy.registry.families import FAMILIES, get_family
from vaestudy.registry.family import VAEFamily

COUNT_SIZE = (480, 832)  # pixels: the size FINDINGS.md's counts use
COUNT_MIN_FRAMES = 17  # the smallest valid pixel frame count at or above this is counted
GIB = 2 ** 30


def count_latent_frames(family: VAEFamily, min_frames: int = COUNT_MIN_FRAMES) -> int:
    """The fewest valid latent frames that decode to at least ``min_frames`` pixel frames."""
    base, step, _, _ = family.frame_rule
    t = base
    while family.pixel_frames(t) < min_frames:
        t += step
    return t


def _untiled(vae, family: VAEFamily, z: torch.Tensor) -> torch.Tensor:
    if family.decode_tiling == "only":
        return decoder_pass(vae, z)
    with torch.no_grad(), family_decode_settings(vae, spatial_tiling=False, framewise=False):
        return call_decode(vae, z)


def _meta_latent(family: VAEFamily, latent_frames: int, size: tuple[int, int]) -> torch.Tensor:
    s = family.spatial_compression
    for name, v in zip(("height", "width"), size):
        if v % s:
            raise ValueError(f"{name}={v} must be a multiple of {family.name}'s spatial compression {s}")
    return torch.empty(1, family.latent_channels, latent_frames, size[0] // s, size[1] // s, device="meta")


def count_decode_flops(name: str, latent_frames: int | None = None, size: tuple[int, int] = COUNT_SIZE,
                       config: str = "full") -> tuple[int, tuple[int, ...]]:
    """(FLOPs, output shape) of the family's untiled decode of one latent, counted on meta tensors.

    The untiled decode is ``decode()`` with diffusers' spatial and temporal (framewise) tiling off (the tiles and
    windows a family adds only repeat work at overlaps), or one decoder pass where ``decode()`` only works in tiles.
    """
    family = get_family(name)
    latent_frames = count_latent_frames(family) if latent_frames is None else latent_frames
    vae = build_on_meta(family, config)
    z = _meta_latent(family, latent_frames, size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = _untiled(vae, family, z)
    return int(counter.get_total_flops()), tuple(out.shape)


def compute_cost(name: str) -> FamilyCost:
    """Parameters and FLOPs per output pixel-frame of the family's released config (see the module docstring)."""
    family = get_family(name)
    total, decoder = parameter_counts(family)
    flops, shape = count_decode_flops(name)
    frames, height, width = shape[-3:]
    return FamilyCost(name=name, params=total, decoder_params=decoder,
                      flops_per_pixel_frame=flops / (frames * height * width), frames=frames, height=height,
                      width=width, counted_with="decoder pass" if family.decode_tiling == "only" else "decode()")


def regenerate(names=None, path=COST_FILE, write: bool = True) -> dict[str, FamilyCost]:
    """Count every family (or ``names``) and, with ``write``, merge the results into the registry's cache file."""
    costs = read_cost_file(path)
    fresh = {n: compute_cost(n) for n in (names or FAMILIES)}
    if write:
        costs.update(fresh)
        write_cost_file({n: costs[n] for n in sorted(costs)}, path)
    return fresh


class _LargestOp(TorchDispatchMode):
    """Records the largest bytes any one operation holds at once: its tensor inputs plus its outputs."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        held = sum(t.numel() * t.element_size() for t in tree_leaves((args, kwargs, out))
                   if isinstance(t, torch.Tensor))
        self.largest = max(self.largest, held)
        return out


def estimate_decode_bytes(name: str, weights: str, frames: int, size: tuple[int, int],
                          dtype: torch.dtype = torch.float32) -> int:
    """A lower bound on the memory a decode needs: weights plus the largest single op's inputs and outputs.

    ``weights`` is "random" or "pretrained" (the full-size config) or "tiny"; counted on meta, so it is cheap for
    any model and size.
    """
    family = get_family(name)
    config = "tiny" if weights == "tiny" else "full"
    family.check_frames(frames)
    _, t, _, _ = family.latent_shape(frames, *size)
    vae = build_on_meta(family, config).to(dtype=dtype)
    z = _meta_latent(family, t, size).to(dtype=dtype)
    mode = _LargestOp()
    with torch.no_grad(), mode:
        _untiled(vae, family, z)
    return weight_bytes(family, config, dtype) + mode.largest


def check_decode_fits(name: str, weights: str, frames: int, size: tuple[int, int], budget_bytes: int = 24 * GIB,
                      dtype: torch.dtype = torch.float32) -> int:
    """The estimate of :func:`estimate_decode_bytes`; ValueError naming it when it exceeds ``budget_bytes``."""
    need = estimate_decode_bytes(name, weights, frames, size, dtype)
    if need > budget_bytes:
        raise ValueError(
            f"model={name!r} with weights={weights!r} at {frames} frames x {size[0]}x{size[1]} needs at least "
            f"{need / GIB:.1f} GiB (weights plus the largest single operation, counted on meta), above the budget "
            f"of {budget_bytes / GIB:.1f} GiB; use weights='tiny' or a smaller size")
    return need


def attention_mask_bytes(name: str, frames: int, size: tuple[int, int], dtype: torch.dtype = torch.bfloat16) -> int:
    """Bytes of the dense N x N attention mask a family's decoder builds for one clip (0 for families without one).

    N is the number of latent positions the mid-block attends over: latent frames x latent height x latent width.
    """
    family = get_family(name)
    if not family.dense_attention_mask:
        return 0
    _, t, h, w = family.latent_shape(frames, *size)
    n = t * h * w
    return n * n * torch.empty((), dtype=dtype).element_size()


def largest_frames_for_mask(name: str, size: tuple[int, int], budget_bytes: int,
                            dtype: torch.dtype = torch.bfloat16, up_to: int = 100_000) -> int | None:
    """The most valid pixel frames whose dense attention mask (:func:`attention_mask_bytes`) fits ``budget_bytes``
    at ``size``; None when not even one frame fits. ValueError for a family whose decoder builds no such mask."""
    family = get_family(name)
    if not family.dense_attention_mask:
        raise ValueError(f"model={name!r} builds no dense attention mask; families that do: "
                         + ", ".join(f.name for f in FAMILIES.values() if f.dense_attention_mask))
    best = None
    for frames in family.valid_frame_counts(up_to):  # the mask grows with frames: stop at the first that overflows
        if attention_mask_bytes(name, frames, size, dtype) > budget_bytes:
            break
        best = frames
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaestudy.bench.cost", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="families to count (default: all)")
    parser.add_argument("--check", action="store_true", help="recompute and compare with the cache; write nothing")
    args = parser.parse_args(argv)
    for n in args.names:
        get_family(n)
    fresh = regenerate(args.names or None, write=not args.check)
    cached = read_cost_file()
    bad = 0
    for n, c in fresh.items():
        old = cached.get(n)
        same = old == c
        bad += not same
        print(f"{n:16s} params {c.params / 1e6:9.1f} M  decoder {c.decoder_params / 1e6:9.1f} M  "
              f"{c.mflops_per_pixel_frame:7.2f} MFLOP/pixel-frame ({c.frames}x{c.height}x{c.width}, "
              f"{c.counted_with})" + ("" if same or not args.check else "  DIFFERS from the cache"))
    return 1 if args.check and bad else 0


if __name__ == "__main__":
    sys.exit(main())
