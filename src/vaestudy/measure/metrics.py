"""Seam and flicker metrics: they judge decoded videos (arrays), they need no model.

Conventions.  Videos are ``(3, T, H, W)`` or ``(1, 3, T, H, W)`` tensors or arrays in the
decoders' range [-1, 1].  Every metric judges the *displayed* video, so values are clipped to
[-1, 1] first (a decode whose family does not clamp, ``clamps_output=False`` in the registry).  Frame-difference
and warping errors are reported in 8-bit code values (0-255), the unit of VBench's temporal
flickering and of the frame-difference reports quoted in ``FINDINGS.md``; PSNR uses data range 2
(as :mod:`vaestudy.measure.oracle`), SSIM comes from scikit-image.

Seam metrics take seam lines as pixel coordinates (``DecodeResult.extra["seams_y"/"seams_x"]``;
a seam at ``s`` lies between pixel columns ``s - 1`` and ``s``).  Flicker metrics take chunk
boundaries as the index of the first pixel frame of every chunk but the first
(:func:`chunk_boundaries`).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from vaestudy.measure.oracle import (
    DATA_RANGE,
    error_by_seam_distance,
    psnr,
    seam_distance_map,
)

# ---------------------------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------------------------

def as_frames(video) -> np.ndarray:
    """(T, H, W, 3) float64 in [0, 1] (clipped) from a (3, T, H, W) or (1, 3, T, H, W) video in [-1, 1]."""
    if isinstance(video, torch.Tensor):
        video = video.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(video, dtype=np.float64)
    if arr.ndim == 5:
        if arr.shape[0] != 1:
            raise ValueError(f"video batch={arr.shape[0]}: metrics judge one video; pass video[i] (shape {arr.shape})")
        arr = arr[0]
    if arr.ndim != 4 or arr.shape[0] != 3:
        raise ValueError(f"video shape {arr.shape} must be (3, frames, height, width) or (1, 3, frames, height, width)")
    return (np.clip(arr, -1.0, 1.0).transpose(1, 2, 3, 0) + 1.0) / 2.0


def luma(frames: np.ndarray) -> np.ndarray:
    """Rec. 601 luma (T, H, W) of (T, H, W, 3) frames in [0, 1]."""
    return frames @ np.array([0.299, 0.587, 0.114])


def _to_decoded(video) -> torch.Tensor:
    """The clipped video back as a (1, 3, T, H, W) float64 tensor in [-1, 1] (for compare.py helpers)."""
    f = as_frames(video)
    return torch.from_numpy(f.transpose(3, 0, 1, 2) * 2.0 - 1.0)[None]


def _same_shape(ref: np.ndarray, test: np.ndarray) -> None:
    if ref.shape != test.shape:
        raise ValueError(f"shapes differ: reference {ref.shape} vs test {test.shape} (frames, height, width, 3)")


# ---------------------------------------------------------------------------------------------
# full-reference quality
# ---------------------------------------------------------------------------------------------

def video_psnr(ref, test) -> float:
    """PSNR (dB) of the whole displayed video against a reference (scikit-image, data range 2); inf if equal."""
    a, b = as_frames(ref), as_frames(test)
    _same_shape(a, b)
    return psnr(a * 2 - 1, b * 2 - 1)  # already clipped by as_frames


def video_ssim(ref, test) -> float:
    """Mean per-frame SSIM (scikit-image, colour, data range 1 on [0, 1] frames)."""
    from skimage.metrics import structural_similarity

    a, b = as_frames(ref), as_frames(test)
    _same_shape(a, b)
    return float(np.mean([structural_similarity(a[t], b[t], channel_axis=-1, data_range=1.0) for t in range(len(a))]))


def lpips_status() -> str:
    """Why LPIPS is or is not reported: its network weights must load offline."""
    try:
        import lpips  # noqa: F401
    except ImportError:
        return "LPIPS skipped: the `lpips` package (and its pretrained AlexNet/VGG weights) is not available offline"
    return "LPIPS package importable, but its backbone weights are fetched from the internet: not used here"


# ---------------------------------------------------------------------------------------------
# seams
# ---------------------------------------------------------------------------------------------

def error_map(ref, test, frame: int | None = None) -> np.ndarray:
    """(H, W) mean absolute error over colour (and all frames, or one ``frame``), in decoded units."""
    a, b = as_frames(ref), as_frames(test)
    _same_shape(a, b)
    err = np.abs(a - b) * DATA_RANGE
    if frame is not None:
        if not -len(err) <= frame < len(err):
            raise ValueError(f"frame={frame} is outside the video's {len(err)} frames")
        return err[frame].mean(axis=-1)
    return err.mean(axis=(0, 3))


def error_by_distance(ref, test, seams_y=(), seams_x=(), band: int = 4) -> list[dict]:
    """Mean/max absolute error per band of distance to the nearest seam (``compare.error_by_seam_distance``
    on the displayed, clipped videos)."""
    return error_by_seam_distance(_to_decoded(ref), _to_decoded(test), seams_y, seams_x, band)


def seam_band_psnr(ref, test, seams_y=(), seams_x=(), band: float = 4.0) -> dict:
    """PSNR (dB) of pixels within ``band`` px of a seam versus the interior (farther than ``band`` px).

    Returns ``seam_db``, ``interior_db``, ``gap_db`` (interior - seam: > 0 when error gathers at
    seams; defined for identical videos and error-free parts too, see :func:`_gap_db`) and the pixel share of
    the band.  Without seams every pixel is interior.
    """
    if not band > 0:
        raise ValueError(f"band={band!r} must be > 0 pixels")
    a, b = as_frames(ref) * 2 - 1, as_frames(test) * 2 - 1
    _same_shape(a, b)
    dist = seam_distance_map(a.shape[1], a.shape[2], seams_y, seams_x)
    near = dist < band

    def part(mask):
        if not mask.any():
            return math.nan
        return psnr(a[:, mask], b[:, mask])

    seam_db, interior_db = part(near), part(~near)
    return {"seam_db": seam_db, "interior_db": interior_db, "gap_db": _gap_db(seam_db, interior_db),
            "band_px": float(band), "band_share": float(near.mean())}


def _gap_db(seam_db: float, interior_db: float) -> float:
    """interior_db - seam_db (= 10 log10 of MSE near the seams over MSE inside the tiles), defined at the edges too:
    0.0 when neither part has any error (identical videos), +inf when only the seam band has error, -inf when only
    the interior has, NaN only when a part has no pixels (no seams, or a band covering the frame)."""
    if math.isnan(seam_db) or math.isnan(interior_db):
        return math.nan
    if math.isinf(seam_db) and math.isinf(interior_db):
        return 0.0
    return interior_db - seam_db


def _line_indices(seams: Sequence[float], n: int) -> list[int]:
    """Indices into a forward difference along an axis of length n for seam coordinates."""
    out = []
    for s in seams:
        j = int(round(float(s))) - 1  # diff[j] = x[j + 1] - x[j] sits on the boundary at coordinate j + 1
        if 0 <= j < n - 1:
            out.append(j)
    return sorted(set(out))


def seam_score(video, seams_y=(), seams_x=(), context: int = 8, period: int | None = None) -> dict:
    """No-reference seam score: gradient energy across the tile-grid lines over that of comparison lines.

    For every seam line the mean squared luma difference across the line is divided by the
    same quantity on comparison lines, so content cancels: by default the lines within
    ``context`` px on either side; with ``period`` (the spatial compression, e.g. 8) the lines
    at the same phase of the latent-pixel grid (``seam + k * period``), because a trained
    decoder draws faint edges on its own latent grid and tile seams sit on that grid.

    One definition everywhere: a score is the squared difference across the seam lines summed over lines and
    frames, over the same sum on the comparison lines (a ratio of sums, so a line or frame with little energy
    cannot dominate). ``score`` pools every line and frame, ``score_y``/``score_x`` one axis, ``per_frame``
    one frame. Where the comparison lines carry no energy at all the score is inf (energy on the seams) or 1.

    What a value means: 1 when the grid lines carry as much energy as the comparison lines. A clip's own content
    moves it either way (an untiled decode of real footage can read below 1), so judge a tiled decode against
    the untiled decode of the same clip — their ratio — rather than against 1.
    """
    if context < 1:
        raise ValueError(f"context={context} must be >= 1 pixel")
    if period is not None and (not isinstance(period, int) or period < 2):
        raise ValueError(f"period={period!r} must be an integer >= 2 pixels (or None for neighbouring lines)")
    y = luma(as_frames(video))  # (T, H, W)
    t, h, w = y.shape
    diffs = {"y": np.diff(y, axis=1) ** 2, "x": np.diff(y, axis=2) ** 2}  # (T, H-1, W), (T, H, W-1)
    num = {"y": np.zeros(t), "x": np.zeros(t)}  # per axis and frame: energy summed over the seam lines
    den = {"y": np.zeros(t), "x": np.zeros(t)}  # ... and over their comparison lines (means per line)
    lines_used = 0
    for axis, seams, n in (("y", seams_y, h), ("x", seams_x, w)):
        d = diffs[axis]
        lines = _line_indices(seams, n)
        for j in lines:
            if period is None:
                nb = [k for k in range(j - context, j + context + 1) if 0 <= k < n - 1 and k not in lines]
            else:
                nb = [k for k in range(j % period, n - 1, period) if k not in lines]
            if not nb:
                continue
            num[axis] += d[:, j].mean(axis=-1) if axis == "y" else d[:, :, j].mean(axis=-1)  # (T,)
            den[axis] += d[:, nb].mean(axis=(1, 2)) if axis == "y" else d[:, :, nb].mean(axis=(1, 2))
            lines_used += 1
    if not lines_used:
        return {"score": math.nan, "score_y": math.nan, "score_x": math.nan, "per_frame": [math.nan] * t, "lines": 0}
    axes = [a for a, s in (("y", seams_y), ("x", seams_x)) if len(s)]
    return {
        "score": _energy_ratio(sum(num[a].sum() for a in axes), sum(den[a].sum() for a in axes)),
        "score_y": _energy_ratio(num["y"].sum(), den["y"].sum()) if "y" in axes else math.nan,
        "score_x": _energy_ratio(num["x"].sum(), den["x"].sum()) if "x" in axes else math.nan,
        "per_frame": [_energy_ratio(num["y"][k] + num["x"][k], den["y"][k] + den["x"][k]) for k in range(t)],
        "lines": lines_used,
    }


def _energy_ratio(on: float, off: float) -> float:
    """Seam-line energy over comparison-line energy: inf when only the seams carry energy, 1 when neither does."""
    if off > 0:
        return float(on / off)
    return math.inf if on > 0 else 1.0


# ---------------------------------------------------------------------------------------------
# flicker
# ---------------------------------------------------------------------------------------------

def chunk_boundaries(chunk_frames: Sequence[int]) -> list[int]:
    """First pixel frame of every chunk but the first, from ``DecodeResult.chunk_frames``."""
    if any(int(n) < 0 for n in chunk_frames):
        raise ValueError(f"chunk_frames={list(chunk_frames)} must be non-negative frame counts")
    starts = np.cumsum([0, *[int(n) for n in chunk_frames]])[1:-1]
    return [int(s) for s in starts if s > 0]


def frame_differences(video) -> np.ndarray:
    """Mean absolute difference between consecutive frames (T - 1 values), in 8-bit code values.

    Entry ``i`` is the change from frame ``i`` to frame ``i + 1``.
    """
    f = as_frames(video)
    if len(f) < 2:
        raise ValueError("frame differences need at least 2 frames")
    return np.abs(np.diff(f, axis=0)).mean(axis=(1, 2, 3)) * 255.0


def boundary_spike_ratio(mafd: Sequence[float], boundaries: Sequence[int]) -> dict:
    """How much larger the frame difference is across chunk boundaries than elsewhere.

    ``ratio`` = mean difference on transitions into a boundary frame / median of the other
    transitions (1 = no spike).  ``excess`` is the same as a difference (8-bit levels).
    """
    mafd = np.asarray(mafd, dtype=np.float64)
    idx = sorted({int(b) - 1 for b in boundaries if 1 <= int(b) <= len(mafd)})
    if not idx:
        raise ValueError(f"boundaries={list(boundaries)} hold no transition inside {len(mafd) + 1} frames")
    rest = np.delete(mafd, idx)
    if rest.size == 0:
        raise ValueError("every transition is a boundary: no baseline to compare against")
    at, base = float(mafd[idx].mean()), float(np.median(rest))
    return {"ratio": at / base if base > 0 else math.inf, "excess": at - base, "at_boundary": at, "baseline": base,
            "transitions": idx}


def temporal_flickering_score(video) -> float:
    """VBench-style temporal flickering: 1 - mean frame difference / 255 (1 = perfectly still).

    VBench applies it to videos of static scenes; on moving content it also counts motion.
    """
    return float(1.0 - frame_differences(video).mean() / 255.0)


def temporal_spectrum(video, fps: float, detrend: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies in Hz, mean power) of every pixel's luma over time.

    Each pixel's series is linearly detrended (slow motion otherwise leaks into every bin
    through the clip's ends), Fourier transformed, and the power averaged over pixels.
    """
    from scipy.signal import detrend as _detrend

    if not fps > 0:
        raise ValueError(f"fps={fps!r} must be > 0")
    y = luma(as_frames(video))
    if len(y) < 4:
        raise ValueError(f"a temporal spectrum needs at least 4 frames, got {len(y)}")
    series = y.reshape(len(y), -1)
    series = _detrend(series, axis=0) if detrend else series - series.mean(axis=0)
    power = (np.abs(np.fft.rfft(series, axis=0)) ** 2).mean(axis=1)
    return np.fft.rfftfreq(len(y), d=1.0 / fps), power


def high_frequency_share(video, fps: float, cutoff_hz: float = 6.0) -> float:
    """Share of temporal energy (DC excluded) above ``cutoff_hz``: flicker puts energy there."""
    if not 0 < cutoff_hz < fps / 2:
        raise ValueError(f"cutoff_hz={cutoff_hz!r} must be in (0, fps/2={fps / 2:g})")
    f, p = temporal_spectrum(video, fps)
    total = p[f > 0].sum()
    return float(p[f > cutoff_hz].sum() / total) if total > 0 else 0.0


def adjacent_ssim(video) -> np.ndarray:
    """SSIM between consecutive frames (T - 1 values; scikit-image, colour)."""
    from skimage.metrics import structural_similarity

    f = as_frames(video)
    return np.array([structural_similarity(f[t], f[t + 1], channel_axis=-1, data_range=1.0)
                     for t in range(len(f) - 1)])


FLOW_METHODS = ("tvl1", "ilk")


def optical_flow(reference: np.ndarray, moving: np.ndarray, method: str = "tvl1") -> np.ndarray:
    """(2, H, W) flow (rows, cols) with ``moving(r + flow(r)) ~ reference(r)`` (scikit-image)."""
    from skimage.registration import optical_flow_ilk, optical_flow_tvl1

    if method == "tvl1":
        return optical_flow_tvl1(reference, moving)
    if method == "ilk":
        return optical_flow_ilk(reference, moving)
    raise ValueError(f"method={method!r} is unknown; valid: {', '.join(FLOW_METHODS)}")


def _sample(img: np.ndarray, coords: np.ndarray) -> np.ndarray:
    from scipy.ndimage import map_coordinates

    if img.ndim == 2:
        return map_coordinates(img, coords, order=1, mode="nearest")
    return np.stack([map_coordinates(img[..., c], coords, order=1, mode="nearest") for c in range(img.shape[-1])], -1)


def warping_error(video, flows: Sequence[np.ndarray] | None = None, *, method: str = "tvl1",
                  occlusion: bool = True) -> dict:
    """Flow-compensated frame difference: |f[t+1] - f[t] warped by the flow|, 8-bit code values.

    Flow per pair comes from scikit-image (``method``) unless ``flows`` (one (2, H, W) array per
    pair, same convention as :func:`optical_flow` with reference f[t+1] and moving f[t]) is given.
    With ``occlusion`` the backward flow is estimated too and pixels failing the forward-backward
    consistency test, or warping from outside the frame, are left out (they are newly visible).
    Returns the mean error, the per-pair errors and the share of pixels kept.
    """
    f = as_frames(video)
    y = luma(f).astype(np.float32)
    t, h, w = y.shape
    if t < 2:
        raise ValueError("warping error needs at least 2 frames")
    if flows is not None and len(flows) != t - 1:
        raise ValueError(f"flows holds {len(flows)} fields; the video has {t - 1} frame pairs")
    grid = np.mgrid[0:h, 0:w].astype(np.float64)
    errs, kept = [], []
    for i in range(t - 1):
        fw = np.asarray(flows[i], dtype=np.float64) if flows is not None else optical_flow(y[i + 1], y[i], method)
        pos = grid + fw  # where each pixel of f[t+1] comes from in f[t]
        valid = (pos[0] >= 0) & (pos[0] <= h - 1) & (pos[1] >= 0) & (pos[1] <= w - 1)
        if occlusion:
            bw = optical_flow(y[i], y[i + 1], method) if flows is None else -fw
            bw_at = np.stack([_sample(bw[k], pos) for k in range(2)])
            mismatch = ((fw + bw_at) ** 2).sum(0)
            valid &= mismatch <= 0.01 * ((fw ** 2).sum(0) + (bw_at ** 2).sum(0)) + 0.5
        warped = _sample(f[i], pos)
        e = np.abs(f[i + 1] - warped).mean(axis=-1) * 255.0
        errs.append(float(e[valid].mean()) if valid.any() else math.nan)
        kept.append(float(valid.mean()))
    return {"mean": float(np.nanmean(errs)), "per_pair": errs, "kept_share": float(np.mean(kept)), "method": method}


def flicker_report(video, boundaries: Sequence[int] = (), fps: float = 25.0, *, cutoff_hz: float = 6.0,
                   warp: bool = True, method: str = "tvl1") -> dict:
    """Every flicker metric of one video in a flat dict (spike ratio only when boundaries are given)."""
    mafd = frame_differences(video)
    out = {
        "mafd_mean": float(mafd.mean()),
        "mafd": mafd.tolist(),
        "vbench_flicker": temporal_flickering_score(video),
        "hf_share": high_frequency_share(video, fps, cutoff_hz),
        "adjacent_ssim_mean": float(adjacent_ssim(video).mean()),
        # a causal decoder makes frame 0 from latent frame 0 alone: its jump is not a chunk seam
        "first_jump_ratio": float(mafd[0] / np.median(mafd[1:])) if len(mafd) > 1 and np.median(mafd[1:]) > 0 else math.nan,
    }
    if len(boundaries):
        s = boundary_spike_ratio(mafd, boundaries)
        out.update(spike_ratio=s["ratio"], spike_excess=s["excess"], mafd_at_boundary=s["at_boundary"],
                   mafd_elsewhere=s["baseline"])
    if warp:
        we = warping_error(video, method=method)
        out.update(warp_error=we["mean"], warp_kept=we["kept_share"], warp_per_pair=we["per_pair"])
    return out
