"""Ready-made comparisons the CLI and the notebooks share: every strategy on one latent."""

from __future__ import annotations

import math

import torch

from vaestudy.decode import decode_full
from vaestudy.decode.strategies import resolve, strategies_for
from vaestudy.measure.oracle import compare
from vaestudy.registry.families import family_of
from vaestudy.tables import Col, format_table


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
    full = decode_full(vae, z)
    runs = [full]
    skipped = ""
    for strat in strategies_for(family):
        if strat.name == "full" or (strat.name == "diffusers-tiled" and not include_diffusers):
            continue
        params = resolve(strat.name, family, tuple(z.shape[2:]), chunk=chunk,
                         overlap=overlap if "tile" in strat.params else None, blend=blend)
        try:
            runs.append(strat.run(vae, z, **params))
        except ValueError as exc:  # diffusers' tiling refuses some plans (e.g. an overlap factor of 0)
            if strat.name != "diffusers-tiled":
                raise
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


def format_strategy_table(rows: list[dict]) -> str:
    """Plain-text table of :func:`strategy_table` rows; the fp32 columns appear when a reference was given.

    ``same comp.``: same arithmetic as the family's decode by construction; ``bit-eq``: measured, the same numbers.
    """
    with_ref = any(not math.isnan(r.get("ref_max_abs", math.nan)) for r in rows)
    params = lambda r: (", ".join(f"{k}={v}" for k, v in r["params"].items())  # noqa: E731
                        if isinstance(r["params"], dict) else r["params"])
    cols = [Col("strategy"), Col("frames"), Col("same comp.", lambda r: str(r["same_computation"])),
            Col("bit-eq", lambda r: str(r["bit_equal"])), Col("max |err|", "max_abs", ".2e"),
            Col("PSNR dB", "psnr_db", ".1f")]
    if with_ref:
        cols += [Col("vs fp32 |err|", "ref_max_abs", ".2e"), Col("vs fp32 dB", "ref_psnr_db", ".1f")]
    cols += [Col("time s", "seconds", ".2f"), Col("1st frame s", "first_frame_s", ".2f"), Col("params", params)]
    legend = ("same comp.: the family decode's arithmetic by construction (order may differ); bit-eq: measured "
              "identical numbers; max |err| / PSNR: against the family's decode in this dtype"
              + ("; vs fp32: against the fp32 full decode of the same weights and latent" if with_ref else ""))
    return format_table(rows, cols) + "\n" + legend
