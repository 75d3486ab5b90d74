"""Spatially parallel decode: the latent split along its width over the ranks of a process group.

Each rank decodes its own columns plus a *halo* of neighbouring latent columns, streaming
through time with the family's stream (``streaming.open_pipeline_stream``: its decoder's cache, or overlapping windows
without one), then crops the halo away (or
keeps it for a linear blend with the neighbour); ``all_gather`` (parts padded to equal width)
puts the frame back together on every rank. The public multi-GPU decoders of the per-frame-cache family do this
with a halo of 2 latent pixels and a crop (FINDINGS.md, LightX2V); the decoder's receptive field is far
wider, and its mid-block attention sees the whole frame, so only a halo covering the whole latent
is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from vaestudy.clock import now
from vaestudy.decode.common import latent_channels
from vaestudy.decode.tiled import blend_ramp
from vaestudy.measure.oracle import compare
from vaestudy.measure.probe import receptive_field
from vaestudy.pipelines.streaming import open_pipeline_stream, stream_chunk, stream_plan
from vaestudy.pipelines.two_device import inject_failure
from vaestudy.registry.families import DEFAULT_FAMILY, family_of, get_family
from vaestudy.registry.load import load_vae

BLEND_MODES = ("crop", "linear")


@dataclass(frozen=True)
class SplitPart:
    """Latent columns one rank owns [own_start, own_stop) and decodes [in_start, in_stop)."""

    rank: int
    own_start: int
    own_stop: int
    in_start: int
    in_stop: int


def split_plan(width: int, parts: int, halo: int) -> list[SplitPart]:
    """Contiguous, near-equal column ranges over ``parts`` ranks, each widened by ``halo`` latent
    columns on both sides (clipped at the borders)."""
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width={width!r} must be a positive number of latent columns")
    if not isinstance(parts, int) or parts < 1 or parts > width:
        raise ValueError(f"parts={parts!r} must be an integer in [1, width={width}]")
    if not isinstance(halo, int) or halo < 0:
        raise ValueError(f"halo={halo!r} must be an integer >= 0 latent columns")
    bounds = [round(i * width / parts) for i in range(parts + 1)]
    return [SplitPart(r, a, b, max(0, a - halo), min(width, b + halo)) for r, (a, b) in enumerate(zip(bounds, bounds[1:]))]


def seams_px(plan: list[SplitPart], scale: int) -> list[float]:
    """Pixel x coordinates of the boundaries between parts."""
    return [p.own_stop * scale for p in plan[:-1]]


def column_weights(plan: list[SplitPart], scale: int, blend: str) -> list[torch.Tensor]:
    """Per-part weights over its decoded columns (pixels): 1 on owned columns, 0 on the halo for
    ``crop``; for ``linear`` the overlap between neighbours (2 x halo) is cross-faded."""
    if blend not in BLEND_MODES:
        raise ValueError(f"blend={blend!r} is unknown; valid: {', '.join(BLEND_MODES)}")
    out = []
    for i, p in enumerate(plan):
        w = torch.zeros((p.in_stop - p.in_start) * scale, dtype=torch.float64)
        a, b = (p.own_start - p.in_start) * scale, (p.own_stop - p.in_start) * scale
        w[a:b] = 1.0
        if blend == "linear":
            if i > 0:  # overlap with the left neighbour: [in_start, prev.in_stop)
                n = (plan[i - 1].in_stop - p.in_start) * scale
                if n > 0:
                    w[:n] = blend_ramp(n, "linear")
            if i + 1 < len(plan):
                n = (p.in_stop - plan[i + 1].in_start) * scale
                if n > 0:
                    w[-n:] = blend_ramp(n, "linear").flip(0)
        out.append(w)
    return out


def assemble(pieces: list[torch.Tensor], plan: list[SplitPart], scale: int, blend: str) -> torch.Tensor:
    """Put decoded parts (each (B, 3, n, H, in_width_px)) back into one frame by crop or blend."""
    weights = column_weights(plan, scale, blend)
    width = plan[-1].in_stop * scale
    b, c, n, h, _ = pieces[0].shape
    acc = torch.zeros(b, c, n, h, width, dtype=torch.float64, device=pieces[0].device)
    wsum = torch.zeros(width, dtype=torch.float64, device=pieces[0].device)
    for piece, p, w in zip(pieces, plan, weights):
        x0 = p.in_start * scale
        w = w.to(piece.device)
        acc[..., x0:x0 + piece.shape[-1]] += piece.double() * w
        wsum[x0:x0 + piece.shape[-1]] += w
    return (acc / wsum).to(pieces[0].dtype)


def split_decode(vae, z: torch.Tensor, halo: int, *, chunk: int = 1, blend: str = "crop", group=None) -> dict:
    """Decode ``z`` with its width split over the ranks of ``group``; every rank returns the whole
    video (rank-identical) plus per-chunk timings of its own part and of the gather (seconds).

    Must be called by every rank of the group with the same latent.
    """

    family = family_of(vae)
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    s = family.spatial_compression
    plan = split_plan(int(z.shape[-1]), world, halo)
    me = plan[rank]
    stream = open_pipeline_stream(vae)
    maxw = max(p.in_stop - p.in_start for p in plan) * s
    frames, t_dec, t_gather = [], [], []
    dist.barrier(group)
    t0 = now()
    with torch.no_grad():
        for a, b in stream_plan(family, int(z.shape[2]), chunk):
            t = now()
            out = stream.step(z[:, :, a:b, :, me.in_start:me.in_stop].contiguous())
            t_dec.append(now() - t)
            t = now()
            padded = F.pad(out, (0, maxw - out.shape[-1])).contiguous()
            gathered = [torch.empty_like(padded) for _ in range(world)]
            dist.all_gather(gathered, padded, group=group)
            pieces = [g[..., :(p.in_stop - p.in_start) * s] for g, p in zip(gathered, plan)]
            frames.append(assemble(pieces, plan, s, blend))
            t_gather.append(now() - t)
    total = now() - t0
    return {"video": torch.cat(frames, dim=2), "halo": halo, "blend": blend, "plan": [p.__dict__ for p in plan],
            "seams_px": seams_px(plan, s), "decode_s": t_dec, "gather_s": t_gather, "total_s": total}


def rf_halos(profile: list[float], shares=(0.9, 0.95, 0.99)) -> dict[str, int]:
    """Halo (latent columns) holding each share of a receptive-field profile (probe.receptive_field)."""
    cum = torch.tensor(profile, dtype=torch.float64).cumsum(0)
    cum = cum / cum[-1]
    return {f"rf{round(sh * 100)}": int(torch.searchsorted(cum, torch.tensor(sh - 1e-12, dtype=torch.float64)))
            for sh in shares}


@dataclass
class SplitConfig:
    """One run of :func:`split_worker`: latent size, halos to sweep, chunking, threads per rank."""

    model: str = DEFAULT_FAMILY
    weights: str = "tiny"
    seed: int = 0
    latent: tuple[int, int, int] = (3, 4, 8)  # latent frames, height, width
    halos: tuple = (0, 1, 2, "rf99", "full")
    chunk: int = 0  # latent frames per streamed step (0: the family's default chunk)
    blend: str = "crop"
    threads: int = 1
    repeats: int = 1
    probe_size: tuple[int, int, int] | None = None  # latent size for the probe (default: the latent)
    fail_rank: int = -1  # test hook (see pipeline.inject_failure)
    fail_mode: str = "raise"

    def validate(self) -> "SplitConfig":

        fam = get_family(self.model)
        fam.check_latent_frames(self.latent[0])
        if self.blend not in BLEND_MODES:
            raise ValueError(f"blend={self.blend!r} is unknown; valid: {', '.join(BLEND_MODES)}")
        for h in self.halos:
            if not (isinstance(h, int) and h >= 0) and h not in ("full", "rf90", "rf95", "rf99"):
                raise ValueError(f"halo={h!r} must be an integer >= 0, 'full' or 'rf90'/'rf95'/'rf99'")
        return self


def split_worker(cfg: SplitConfig, *, timeout_s: float = 60.0) -> dict | None:
    """Sweep halos with the latent split over the group's ranks; rank 0 also decodes the whole latent
    alone (the reference and the one-process time) and returns the record; other ranks return None."""


    cfg.validate()
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(cfg.threads)
    if not cfg.chunk:
        cfg.chunk = stream_chunk(get_family(cfg.model))
    dev = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    vae = load_vae(cfg.model, cfg.weights, seed=cfg.seed, device=dev)
    fam = family_of(vae)
    t, h, w = cfg.latent
    g = torch.Generator().manual_seed(cfg.seed)
    z = torch.randn(1, latent_channels(vae), t, h, w, generator=g).to(dev)

    inject_failure(cfg.fail_rank, cfg.fail_mode, timeout_s)
    rf = None
    if any(isinstance(x, str) and x.startswith("rf") for x in cfg.halos):
        obj = [None]
        if rank == 0:

            ps = cfg.probe_size or (fam.latent_frames_at_least(fam.frame_rule[1] + 1), h, w)
            r = receptive_field(vae, ps)
            # a width split only cares about horizontal distance: use the probe's Chebyshev profile
            obj = [{"probe_size": list(ps), "spatial_radius": r["spatial_radius"], "profile": r["spatial_profile"],
                    "limited_by_size": r["limited_by_size"], **rf_halos(r["spatial_profile"])}]
        dist.broadcast_object_list(obj, src=0)
        rf = obj[0]
    full_halo = w - min(p.own_stop - p.own_start for p in split_plan(w, world, 0))

    def resolve(x):
        if x == "full":
            return full_halo
        if isinstance(x, str):
            return min(rf[x], full_halo)
        return min(int(x), full_halo)

    # warm-up (first calls allocate and pick kernels): one split decode everywhere, one whole decode on rank 0
    split_decode(vae, z, 0, chunk=cfg.chunk, blend=cfg.blend)
    # the reference: one process, the whole latent, streamed with the same chunks, timed with the
    # rank's thread count and with every rank's threads (on a shared CPU more threads can be slower)
    ref, single = None, {cfg.threads: [], cfg.threads * world: []}
    for _ in range(cfg.repeats + 1):  # the first pass warms up
        for nt in single:
            dist.barrier()
            if rank == 0:
                torch.set_num_threads(nt)
                t0 = now()
                with torch.no_grad():
                    st = open_pipeline_stream(vae)
                    ref = torch.cat([st.step(z[:, :, a:b]) for a, b in stream_plan(fam, t, cfg.chunk)], dim=2)
                single[nt].append(now() - t0)
                torch.set_num_threads(cfg.threads)
            dist.barrier()
    rows = []
    for x in cfg.halos:
        halo = resolve(x)
        runs = [split_decode(vae, z, halo, chunk=cfg.chunk, blend=cfg.blend) for _ in range(cfg.repeats)]
        times = [r["total_s"] for r in runs]
        dec = [sum(r["decode_s"]) for r in runs]
        all_dec = [None] * world
        dist.all_gather_object(all_dec, dec)
        if rank == 0:
            res = runs[-1]
            c = compare(ref.cpu(), res["video"].cpu(), seams_x=res["seams_px"], band=fam.spatial_compression)
            near = [b for b in c["seam_bands"] if b["band_end"] <= fam.spatial_compression]
            rows.append({"halo_label": str(x), "halo": halo, "covers_latent": halo >= full_halo,
                         "max_abs": c["max_abs"], "mean_abs": c["mean_abs"], "psnr_db": c["psnr_db"],
                         "seam_band_mean_abs": near[0]["mean_abs"] if near else math.nan,
                         "seam_bands": c["seam_bands"], "total_s": times, "rank_decode_s": all_dec,
                         "gather_s": [sum(r["gather_s"]) for r in runs]})
    if rank != 0:
        return None
    import statistics

    single = {nt: v[1:] for nt, v in single.items()}
    best_threads = min(single, key=lambda nt: statistics.median(single[nt]))
    single_s = statistics.median(single[best_threads])
    for r in rows:
        r["speedup"] = single_s / statistics.median(r["total_s"])
    return {"config": {**cfg.__dict__, "halos": [str(x) for x in cfg.halos]}, "world": world,
            "latent_shape": list(z.shape), "pixel_shape": list(ref.shape),
            "single_s_by_threads": {str(k): v for k, v in single.items()}, "single_s": single[best_threads],
            "single_threads": best_threads, "rank_threads": cfg.threads, "rf": rf, "full_halo": full_halo,
            "rows": rows}
