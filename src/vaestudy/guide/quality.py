"""Quality experiments: seams of tiled decodes, flicker of chunked decodes, the GroupNorm effect.

Every experiment decodes a latent obtained by encoding a real clip with the model's own
encoder (posterior mean), compares against the family's full decode and reports seam or
flicker metrics (:mod:`vaestudy.measure.metrics`) plus wall time.  Rows are plain dicts so notebooks
can print or plot them; the decoded videos ride along under ``"result"`` where useful.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from vaestudy.clock import Clock
from vaestudy.data import load_clip
from vaestudy.decode import (
    TilePlan,
    decode_chunked,
    decode_full,
    decode_single_pass,
    decode_tiled,
    framewise_groupnorm,
)
from vaestudy.decode.common import Chunk, clear_vae_cache, collect, decoder_mid_attention, model_device_dtype
from vaestudy.decode.latent_blend import decode_tiled_grid, decode_window_grid
from vaestudy.measure import metrics as M
from vaestudy.measure.oracle import compare, seam_concentration
from vaestudy.pipelines.streaming import encode_clip, open_pipeline_stream, stream_chunk, stream_is_exact, stream_plan
from vaestudy.plots import weights_note
from vaestudy.registry.families import FAMILIES, family_of
from vaestudy.registry.load import load_vae

# ---------------------------------------------------------------------------------------------
# models and latents
# ---------------------------------------------------------------------------------------------

def load_model(name: str, weights: str = "embedded", *, seed: int = 0, device: str = "cpu",
               fallback: str = "tiny") -> tuple[torch.nn.Module, str, str]:
    """``(vae, weights actually used, message)``; falls back to ``fallback`` weights when ``weights`` fails."""
    try:
        vae = load_vae(name, weights=weights, seed=seed, device=device)
        return vae, weights, f"{name}: weights={weights!r} loaded"
    except (ValueError, FileNotFoundError, OSError, RuntimeError, ImportError) as exc:
        if fallback is None or fallback == weights:
            raise
        vae = load_vae(name, weights=fallback, seed=seed, device=device)
        msg = (f"{name}: weights={weights!r} unavailable ({type(exc).__name__}: {str(exc)[:100]}); "
               f"FELL BACK to weights={fallback!r}: RANDOM weights, quality numbers mean little")
        return vae, fallback, msg


@torch.no_grad()
def encode_video(vae, video: torch.Tensor) -> torch.Tensor:
    """Posterior mean latent (1, C, t, h, w) of a (3, T, H, W) or (1, 3, T, H, W) video in [-1, 1]."""
    clear_vae_cache(vae)
    z = encode_clip(vae, video)
    clear_vae_cache(vae)
    return z


def clip_latent(vae, clip: str = "bikes", frames: int = 17, size: tuple[int, int] = (64, 64), *,
                start: int = 0, scale: float = 0.5, crop=None) -> tuple[torch.Tensor, torch.Tensor]:
    """A real clip segment (3, T, H, W) and its posterior-mean latent from the model's encoder."""

    family_of(vae).check_frames(frames)
    video = load_clip(clip, frames, size, start=start, scale=scale, crop=crop)
    return video, encode_video(vae, video)


# ---------------------------------------------------------------------------------------------
# spatial tiling
# ---------------------------------------------------------------------------------------------

def tiled_row(ref: torch.Tensor, res, *, source: torch.Tensor | None = None, band: float = 4.0,
              period: int | None = None) -> dict:
    """Seam metrics of one tiled DecodeResult against the reference decode (and the source clip).

    The no-reference seam score compares the seam lines with the other lines of the latent grid
    every ``period`` px (the spatial compression), on the tiled and on the full decode.
    """
    sy, sx = res.extra["seams_y"], res.extra["seams_x"]
    sb = M.seam_band_psnr(ref, res.video, sy, sx, band)
    row = {**res.params, "seam_db": sb["seam_db"], "interior_db": sb["interior_db"], "gap_db": sb["gap_db"],
           "psnr_vs_full": M.video_psnr(ref, res.video),
           "seam_score": M.seam_score(res.video, sy, sx, period=period)["score"],
           "seam_score_full": M.seam_score(ref, sy, sx, period=period)["score"], "seconds": res.total_seconds,
           "weights": res.weights}
    if source is not None:
        row["psnr_vs_source"] = M.video_psnr(source, res.video)
    return row


def tiling_sweep(vae, z: torch.Tensor, overlaps: Sequence[int] = (0, 1, 2), blends: Sequence[str] = ("linear", "cosine", "none"),
                 grids: Sequence[str] = ("pixel",), *, count: int = 2, band: float = 4.0,
                 source: torch.Tensor | None = None, ref=None, keep: bool = False) -> list[dict]:
    """Tiled decodes (``count`` x ``count`` tiles) across overlap, blend and blend grid, against the full decode.

    Each row: overlap, blend, grid, tile, seam-band and interior PSNR (dB), their gap, PSNR of
    the whole video, the no-reference seam score of the tiled decode and of the full decode on
    the same lines, and seconds.  ``keep`` stores the DecodeResult under ``"result"``.
    """
    ref = ref if ref is not None else decode_full(vae, z)
    rows = []
    for o in overlaps:
        plan = TilePlan.for_count(tuple(z.shape[-2:]), count, o)
        for blend in blends:
            if o == 0 and blend != blends[0]:
                continue  # no overlap: every blend is the same hard cut
            for grid in grids:
                if o == 0 and grid != grids[0]:
                    continue
                res = decode_tiled_grid(vae, z, plan.tile, o, blend, grid)
                row = tiled_row(ref.video, res, source=source, band=band, period=family_of(vae).spatial_compression)
                row.update(overlap=o, effective_overlap=plan.effective_overlap[0], blend=blend if o else "none (no overlap)",
                           grid=grid)
                if keep:
                    row["result"] = res
                rows.append(row)
    return rows


def tile_explorer(vae, z: torch.Tensor, tile: int, overlap: int, blend: str = "linear", *, ref=None,
                  band: float = 4.0) -> dict:
    """One tiled decode at (tile, overlap) in latent pixels, scored against the full decode (for widgets)."""
    ref = ref if ref is not None else decode_full(vae, z)
    res = decode_tiled(vae, z, tile=tile, overlap=overlap, blend=blend)
    row = tiled_row(ref.video, res, band=band, period=family_of(vae).spatial_compression)
    row["error_map"] = M.error_map(ref.video, res.video)
    row["result"] = res
    return row


class decoder_attention:
    """Context manager: set the decoder's mid-block attention output projection, restore it on exit.

    For families whose decoder has a mid-block attention (``VAEFamily.attention_block`` in the registry).
    ``setting`` is ``"as loaded"`` (no change), ``"identity"`` (projection zeroed: the block passes its input
    through) or ``"fresh"`` (the projection as diffusers initialises a new one, drawn from ``seed``: a global
    attention that the rest of the decoder was not trained with).  The block returns
    ``proj(attention(norm(x))) + x``, so the projection alone decides how much the block changes.
    """

    SETTINGS = ("as loaded", "identity", "fresh")

    def __init__(self, vae, setting: str, seed: int = 0) -> None:
        if setting not in self.SETTINGS:
            raise ValueError(f"setting={setting!r}; valid: {', '.join(self.SETTINGS)}")
        self.proj, self.setting, self.seed = decoder_mid_attention(vae).proj, setting, seed

    def __enter__(self):
        self.saved = [t.detach().clone() for t in (self.proj.weight, self.proj.bias)]
        with torch.no_grad():
            if self.setting == "identity":
                self.proj.weight.zero_()
                self.proj.bias.zero_()
            elif self.setting == "fresh":
                fresh = torch.nn.Conv2d(self.proj.in_channels, self.proj.out_channels, 1)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed)
                    fresh.reset_parameters()
                self.proj.weight.copy_(fresh.weight)
                self.proj.bias.copy_(fresh.bias)
        return self

    def __exit__(self, *exc):
        with torch.no_grad():
            self.proj.weight.copy_(self.saved[0])
            self.proj.bias.copy_(self.saved[1])
        return False


def attention_locality(vae, z: torch.Tensor, *, tile: int, overlap: int, near: float = 8.0, band: int = 4,
                       settings: Sequence[str] = decoder_attention.SETTINGS, seed: int = 0, ref=None) -> list[dict]:
    """Is a tiled decode's error local to the seams?  Once per setting of the decoder's mid-block attention.

    Each row compares a tiled decode (``tile``/``overlap`` latent px, linear blend) with the full decode *under
    the same setting*: ``seam_concentration`` is the mean error within ``near`` px of a seam over the mean error
    farther away (``vaestudy.compare``), with the max and mean error and the PSNR.  A decoder whose every layer
    is a convolution changes a tile only near its borders; a global attention sees the whole tile in the tiled
    decode and the whole frame in the full one, so it changes every pixel.  ``ref``: the full decode of the model
    as loaded, when one is at hand (it stands for the "as loaded" setting's own).
    """

    rows = []
    for setting in settings:
        with decoder_attention(vae, setting, seed):
            full = ref if setting == "as loaded" and ref is not None else decode_full(vae, z)
            res = decode_tiled(vae, z, tile=tile, overlap=overlap, blend="linear")
        out = compare(full.video, res.video, seams_y=res.extra["seams_y"], seams_x=res.extra["seams_x"], band=band)
        rows.append({"attention": setting, "seam_concentration": seam_concentration(out["seam_bands"], near),
                     "max_abs": out["max_abs"], "mean_abs": out["mean_abs"], "psnr_vs_full": out["psnr_db"],
                     "tile": tile, "overlap": overlap, "weights": res.weights,
                     "error_map": M.error_map(full.video, res.video)})
    return rows


# ---------------------------------------------------------------------------------------------
# temporal chunking
# ---------------------------------------------------------------------------------------------

def _flicker_row(name: str, res, ref, boundaries, fps, *, source=None, warp: bool = True, method: str = "tvl1") -> dict:
    rep = M.flicker_report(res.video, boundaries, fps, warp=warp, method=method)
    row = {"strategy": name, "seconds": res.total_seconds, "first_frame_s": res.first_frame_seconds,
           "chunk_seconds": list(res.chunk_seconds), "chunk_frames": list(res.chunk_frames),
           "psnr_vs_full": M.video_psnr(ref.video, res.video) if ref is not None else math.nan,
           "weights": res.weights, **rep, "result": res}
    if source is not None:
        # nan where the class's encoder and decoder disagree on frame counts (no frame-by-frame pairing is known)
        same = source.shape[-3] == res.video.shape[-3]
        row["psnr_vs_source"] = M.video_psnr(source, res.video) if same else math.nan
    return row


def stream_name(family) -> str:
    """The row name of a family's stream (:func:`vaestudy.pipelines.streaming.open_pipeline_stream`): ``chunked``
    with its cache, ``windowed stream`` without one."""
    return "chunked" if family.streamable else "windowed stream"


def iter_stream(vae, z: torch.Tensor, chunk: int | None = None):
    """Yield :class:`Chunk` objects of the family's stream (its cache, or overlapping windows without one) as each
    step's pixel frames are out; ``chunk`` latent frames per step (default ``stream_chunk``)."""
    family = family_of(vae)
    plan = stream_plan(family, int(z.shape[2]), chunk)
    device, _ = model_device_dtype(vae)
    stream = open_pipeline_stream(vae)
    sw = Clock(device)
    start = 0
    with torch.no_grad():
        for a, b in plan:
            # the next latent frame, for a stream whose decoder reads ahead (the others ignore it)
            out = stream.step(z[:, :, a:b], ahead=z[:, :, b:b + 1] if b < z.shape[2] else None)
            dt, el = sw.lap()
            yield Chunk(out, start, dt, el)
            start += out.shape[2]


def decode_stream(vae, z: torch.Tensor, chunk: int | None = None):
    """Collect :func:`iter_stream` into a DecodeResult named by :func:`stream_name`."""
    family = family_of(vae)
    chunk = stream_chunk(family) if chunk is None else chunk
    return collect(stream_name(family), iter_stream(vae, z, chunk), exact=stream_is_exact(family),
                   params={"chunk": chunk, "mode": "cache" if family.streamable else "windows"}, vae=vae)


def chunking_compare(vae, z: torch.Tensor, fps: float, *, chunk: int | None = None, overlap: int | None = None,
                     source: torch.Tensor | None = None, warp: bool = True, method: str = "tvl1",
                     grids: Sequence[str] = ("pixel", "latent")) -> list[dict]:
    """Full decode, the family's stream (:func:`decode_stream`), naive chunks and overlap-and-blend windows
    (pixel/latent grid) where the family's frames follow the causal prefix rule.

    All rows are scored at the same chunk boundaries (those of the stream), so the full
    decode and the source clip give the clean value of the spike ratio.  The boundary after
    frame 0 is left out of the spike ratio: a causal decoder makes frame 0 from latent frame 0
    alone in every strategy, so that jump (``first_jump_ratio``) is not a chunk seam.
    """
    family = family_of(vae)
    chunk = chunk or stream_chunk(family)
    overlap = overlap or family.window_overlap
    full = decode_full(vae, z)
    runs = [("full", full), (stream_name(family), decode_stream(vae, z, chunk))]
    if family.causal_frames:
        runs.append(("chunked-naive", decode_chunked(vae, z, chunk, mode="naive")))
        for g in grids:
            runs.append((f"chunked-window ({g} grid)", decode_window_grid(vae, z, chunk, overlap, "linear", g)))
    boundaries = [b for b in M.chunk_boundaries(runs[1][1].chunk_frames) if b > 1]
    rows = [_flicker_row(n, r, full, boundaries, fps, source=source, warp=warp, method=method) for n, r in runs]
    if source is not None:
        src = M.flicker_report(source, boundaries, fps, warp=warp, method=method)
        rows.insert(0, {"strategy": "source clip", "seconds": math.nan, "first_frame_s": math.nan,
                        "chunk_seconds": [], "chunk_frames": [], "psnr_vs_full": math.nan, "weights": "-",
                        "psnr_vs_source": math.inf, **src, "result": None})
    for r in rows:
        r["boundaries"] = boundaries
    return rows


def streaming_timeline(vae, z: torch.Tensor, chunk: int | None = None, *, repeats: int = 3) -> dict:
    """Per-chunk latency and time to first frame of the family's stream (:func:`iter_stream`) over ``repeats`` runs
    (seconds).

    Each repeat also times the family's full decode right after the stream, so both see the same
    machine load.  Returns min, median and max of the time to first frame, of every chunk's
    latency and of the full decode, and the frames each chunk delivers.
    """
    import numpy as np


    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats={repeats!r} must be an integer >= 1")
    family = family_of(vae)
    chunk = chunk or stream_chunk(family)
    mode = "cache" if family.streamable else "windows"
    secs, ttff, full, frames = [], [], [], None
    for _ in range(repeats):
        clear_vae_cache(vae)
        chunks = list(iter_stream(vae, z, chunk))
        secs.append([c.seconds for c in chunks])
        ttff.append(chunks[0].elapsed)
        frames = [c.frames.shape[2] for c in chunks]
        full.append(decode_full(vae, z).total_seconds)
    secs, ttff, full = np.array(secs), np.array(ttff), np.array(full)
    return {"mode": mode, "chunk": chunk, "frames": frames, "repeats": repeats,
            "chunk_min_s": secs.min(0).tolist(), "chunk_median_s": np.median(secs, 0).tolist(),
            "chunk_max_s": secs.max(0).tolist(),
            "ttff_min_s": float(ttff.min()), "ttff_median_s": float(np.median(ttff)), "ttff_max_s": float(ttff.max()),
            "full_min_s": float(full.min()), "full_median_s": float(np.median(full)), "full_max_s": float(full.max())}


# ---------------------------------------------------------------------------------------------
# the GroupNorm effect
# ---------------------------------------------------------------------------------------------

def groupnorm_families(family) -> list[str]:
    """The families of the GroupNorm comparison, chosen by the registry's rules: ``family`` itself where it streams
    with a cache, beside the contrasting reference (the first registry family whose cache stream is exact with a
    per-pixel norm, or the first whose GroupNorm pools a chunk's frames); both references where ``family`` has no
    cache to stream with."""
    cached = [f for f in FAMILIES.values() if f.streamable]
    exact = next(f for f in cached if f.streams_exactly and f.norm == "rms")
    pooled = next(f for f in cached if f.norm == "group" and f.norm_pools_frames is not False and not f.stream_caveat)
    if not family.streamable:
        return [exact.name, pooled.name]
    other = pooled if family.streams_exactly else exact
    return [family.name, other.name]


def groupnorm_effect(vae, z: torch.Tensor, *, chunk: int | None = None, overlap: int = 1, count: int = 2,
                     band: float = 4.0, fps: float = 25.0) -> list[dict]:
    """How much tiles and chunks change a decode, for one family, with and without per-frame GroupNorm.

    Rows: ``tiles`` (count x count, ``overlap`` latent px, linear blend, vs the full decode) and
    ``chunks`` (cached stream vs one decoder pass over every frame), each with the family's own
    normalisation and, for GroupNorm families, with :func:`framewise_groupnorm` (which the
    weights were not trained with: exactness changes, quality may not survive).
    """
    family = family_of(vae)
    chunk = chunk or family_of(vae).default_chunk
    settings = [("own norm", None)]
    if family.norm == "group":
        settings.append(("per-frame GroupNorm", framewise_groupnorm))
    rows = []
    for label, ctx in settings:
        cm = ctx(vae) if ctx else _null()
        with cm:
            one = decode_single_pass(vae, z)
            full = decode_full(vae, z)
            plan = TilePlan.for_count(tuple(z.shape[-2:]), count, overlap)
            tiled = decode_tiled(vae, z, plan.tile, overlap, "linear")
            chunked = decode_chunked(vae, z, chunk, mode="cache")
        sb = M.seam_band_psnr(full.video, tiled.video, tiled.extra["seams_y"], tiled.extra["seams_x"], band)
        b = [k for k in M.chunk_boundaries(chunked.chunk_frames) if k > 1]  # frame 0's jump is no chunk seam
        spike = M.boundary_spike_ratio(M.frame_differences(chunked.video), b)["ratio"]
        spike_ref = M.boundary_spike_ratio(M.frame_differences(one.video), b)["ratio"]
        base = {"family": family.name, "norm": family.norm, "setting": label, "weights": getattr(vae, "weights_source", "?")}
        rows.append({**base, "what": f"tiles {count}x{count}, overlap {overlap}", "max_abs": float((tiled.video - full.video).abs().max()),
                     "psnr_db": M.video_psnr(full.video, tiled.video), "seam_db": sb["seam_db"],
                     "interior_db": sb["interior_db"], "spike_ratio": math.nan, "spike_ratio_ref": math.nan,
                     "seconds": tiled.total_seconds})
        rows.append({**base, "what": f"chunks of {chunk} latent frames (cache)",
                     "max_abs": float((chunked.video - one.video).abs().max()), "psnr_db": M.video_psnr(one.video, chunked.video),
                     "seam_db": math.nan, "interior_db": math.nan, "spike_ratio": spike, "spike_ratio_ref": spike_ref,
                     "seconds": chunked.total_seconds})
    return rows


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False




def weights_caption(model: str, weights: str) -> str:
    """The line every quality figure carries: which weights made it, loudly when they are random."""

    loud = "  [RANDOM WEIGHTS: quality numbers mean little]" if weights in ("tiny", "random") else ""
    return f"{model} · {weights}: {weights_note(weights)}{loud}"
