"""Ready-made comparisons the CLI and the notebooks share: every strategy on one latent."""

from __future__ import annotations

import math

import torch

from vaestudy.compare import compare
from vaestudy.decode import (
    TilePlan, decode_chunked, decode_diffusers_tiled, decode_full, decode_single_pass, decode_tiled,
    decode_tiled_chunked,
)
from vaestudy.decode.common import latent_channels
from vaestudy.models import family_of


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' → (H, W); ValueError naming the value otherwise."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size={text!r} must look like HEIGHTxWIDTH, e.g. 64x64") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"size={text!r} must be positive")
    return h, w


def random_latent(vae, frames: int, size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """A seeded N(0, 1) latent for a pixel video of ``frames`` x ``size`` (validated by the family)."""
    family = family_of(vae)
    c, t, h, w = family.latent_shape(frames, *size)
    p = next(vae.parameters())
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, latent_channels(vae), t, h, w, generator=g).to(p)


def default_tile_plan(latent_hw: tuple[int, int], overlap: int = 2) -> TilePlan:
    """A 2x2 plan with ``overlap`` latent pixels; 1 tile along an axis too short for two overlapping tiles.

    Two tiles of ``ceil((n + overlap) / 2)`` fit an axis of ``n`` latent pixels when that is below ``n``, i.e.
    ``n >= overlap + 2``. ValueError when neither axis can be split: a "tiled" decode of one tile would be the full
    decode under another name.
    """
    if not isinstance(overlap, int) or overlap < 0:
        raise ValueError(f"overlap={overlap!r} must be an integer >= 0 latent pixels")
    counts = tuple(2 if n >= overlap + 2 else 1 for n in latent_hw)
    if counts == (1, 1):
        raise ValueError(f"latent {latent_hw[0]}x{latent_hw[1]} is too small to tile with overlap={overlap}: two "
                         f"tiles need at least {overlap + 2} latent pixels along an axis; use a larger size or a "
                         f"smaller overlap")
    return TilePlan.for_count(latent_hw, counts, tuple(overlap if k > 1 else 0 for k in counts))


def strategy_table(vae, z: torch.Tensor, *, chunk: int | None = None, overlap: int = 2, blend: str = "linear",
                   include_diffusers: bool = True, reference: torch.Tensor | None = None) -> list[dict]:
    """Decode ``z`` with every strategy the family supports and compare each to the full decode.

    Two different facts per row, never merged: ``same_computation`` (by construction, the strategy performs the
    family decode's arithmetic, possibly in another order) and ``bit_equal`` (measured: the same numbers as the
    family's decode in this dtype). ``max_abs``/``psnr_db`` compare with the family's decode in the model's dtype;
    with ``reference`` (the fp32 full decode of the same weights and latent) ``ref_max_abs``/``ref_psnr_db`` give the
    error a lower precision adds. Also: parameters, frames, wall seconds, time to first frame, the DecodeResult.
    """
    family = family_of(vae)
    if chunk is None:
        chunk = 2 if family.cache == "conv_cache" else 1
    full = decode_full(vae, z)
    plan = default_tile_plan(tuple(z.shape[-2:]), overlap)
    runs = [full]
    if family.cache:
        runs.append(decode_single_pass(vae, z))
        runs.append(decode_chunked(vae, z, chunk))
        runs.append(decode_chunked(vae, z, chunk, mode="naive"))
    else:
        runs.append(decode_chunked(vae, z, chunk, mode="naive"))
        runs.append(decode_chunked(vae, z, chunk, mode="window", overlap=2 if family.frame_step == family.temporal_compression else 3))
    runs.append(decode_tiled(vae, z, tile=plan.tile, overlap=plan.overlap, blend=blend))
    if family.cache:
        runs.append(decode_tiled_chunked(vae, z, chunk, tile=plan.tile, overlap=plan.overlap, blend=blend))
    if include_diffusers:
        s = family.spatial_compression
        tile_px = tuple(t * s for t in plan.tile)
        stride_px = tuple((t - o) * s for t, o in zip(plan.tile, plan.overlap))
        try:
            runs.append(decode_diffusers_tiled(vae, z, tile_px=tile_px, stride_px=stride_px, check_size=False))
        except ValueError as exc:  # e.g. an overlap factor of 0 for CogVideoX
            runs.append(None)
            skipped = str(exc)
    rows = []
    for r in runs:
        if r is None:
            rows.append({"strategy": "diffusers-tiled", "params": skipped, "frames": 0, "max_abs": math.nan,
                         "psnr_db": math.nan, "same_computation": False, "bit_equal": False,
                         "ref_max_abs": math.nan, "ref_psnr_db": math.nan, "seconds": math.nan,
                         "first_frame_s": math.nan, "result": None})
            continue
        same = r.video.shape == full.video.shape
        c = compare(full.video, r.video) if same else {"max_abs": math.nan, "psnr_db": math.nan}
        ref = (compare(reference.float(), r.video.float()) if reference is not None and reference.shape == r.video.shape
               else {"max_abs": math.nan, "psnr_db": math.nan})
        params = dict(r.params)
        if not same:
            params["shape"] = tuple(r.video.shape[2:])
        rows.append({"strategy": r.strategy, "params": params, "frames": r.frames, "max_abs": c["max_abs"],
                     "psnr_db": c["psnr_db"], "same_computation": r.exact,
                     "bit_equal": bool(same and torch.equal(full.video, r.video)),
                     "ref_max_abs": ref["max_abs"], "ref_psnr_db": ref["psnr_db"], "seconds": r.total_seconds,
                     "first_frame_s": r.first_frame_seconds, "result": r})
    return rows


def format_table(rows: list[dict]) -> str:
    """Plain-text table of :func:`strategy_table` rows; the fp32 columns appear when a reference was given.

    ``same comp.``: same arithmetic as the family's decode by construction; ``bit-eq``: measured, the same numbers.
    """
    with_ref = any(not math.isnan(r.get("ref_max_abs", math.nan)) for r in rows)
    head = (f"{'strategy':<16} {'frames':>6} {'same comp.':>10} {'bit-eq':>6} {'max |err|':>10} {'PSNR dB':>8}"
            + (f" {'vs fp32 |err|':>13} {'vs fp32 dB':>10}" if with_ref else "")
            + f" {'time s':>7} {'1st frame s':>11}  params")
    lines = [head, "-" * len(head)]
    for r in rows:
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items()) if isinstance(r["params"], dict) else r["params"]
        lines.append(f"{r['strategy']:<16} {r['frames']:>6} {str(r['same_computation']):>10} {str(r['bit_equal']):>6} "
                     f"{r['max_abs']:>10.2e} {r['psnr_db']:>8.1f}"
                     + (f" {r['ref_max_abs']:>13.2e} {r['ref_psnr_db']:>10.1f}" if with_ref else "")
                     + f" {r['seconds']:>7.2f} {r['first_frame_s']:>11.2f}  {params}")
    lines.append("same comp.: the family decode's arithmetic by construction (order may differ); bit-eq: measured "
                 "identical numbers; max |err| / PSNR: against the family's decode in this dtype"
                 + ("; vs fp32: against the fp32 full decode of the same weights and latent" if with_ref else ""))
    return "\n".join(lines)
