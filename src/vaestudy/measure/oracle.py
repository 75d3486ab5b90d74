"""The exactness oracle: how a decode relates to a reference decode of the same latent.

Videos are (batch, 3, frames, height, width) tensors in [-1, 1] (data range 2); PSNR uses
scikit-image with that range.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio

DATA_RANGE = 2.0  # decoded pixels live in [-1, 1]
ONE_8BIT_LEVEL = DATA_RANGE / 255.0  # one 8-bit code value, in decoded units


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float64).numpy()


def psnr(ref, test, *, clip: bool = False) -> float:
    """The one PSNR: dB between two arrays in decoded units ([-1, 1], data range 2; scikit-image), +inf if equal.

    ``clip=False`` judges the raw decoder output (the oracle: a decode against a reference decode);
    ``clip=True`` clips both to [-1, 1] first, as a displayed or saved video is. Tensors or arrays, any shape.
    """
    a = _np(ref) if isinstance(ref, torch.Tensor) else np.asarray(ref, dtype=np.float64)
    b = _np(test) if isinstance(test, torch.Tensor) else np.asarray(test, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: reference {a.shape} vs test {b.shape}")
    if clip:
        a, b = np.clip(a, -1.0, 1.0), np.clip(b, -1.0, 1.0)
    if np.array_equal(a, b):
        return math.inf
    return float(peak_signal_noise_ratio(a, b, data_range=DATA_RANGE))


def _check_same_shape(ref, test):
    if ref.shape != test.shape:
        raise ValueError(f"shapes differ: reference {tuple(ref.shape)} vs test {tuple(test.shape)}")


def seam_distance_map(height: int, width: int, seams_y=(), seams_x=()) -> np.ndarray:
    """Distance (pixels) from every pixel centre to the nearest seam line; +inf without seams."""
    yy = np.arange(height) + 0.5
    xx = np.arange(width) + 0.5
    dy = np.min(np.abs(yy[:, None] - np.asarray(seams_y)[None, :]), axis=1) if len(seams_y) else np.full(height, np.inf)
    dx = np.min(np.abs(xx[:, None] - np.asarray(seams_x)[None, :]), axis=1) if len(seams_x) else np.full(width, np.inf)
    return np.minimum(dy[:, None], dx[None, :])


def error_by_seam_distance(ref, test, seams_y=(), seams_x=(), band: int = 4) -> list[dict]:
    """Mean and max absolute error per band of distance to the nearest seam (bands of ``band`` pixels)."""
    _check_same_shape(ref, test)
    if band < 1:
        raise ValueError(f"band={band} must be >= 1 pixel")
    err = np.abs(_np(ref) - _np(test)).mean(axis=(0, 1, 2))  # (H, W): mean over batch, colour, frames
    dist = seam_distance_map(err.shape[0], err.shape[1], seams_y, seams_x)
    finite = dist[np.isfinite(dist)]
    if finite.size == 0:
        return [{"band_start": 0.0, "band_end": math.inf, "mean_abs": float(err.mean()), "max_abs": float(err.max()),
                 "pixels": int(err.size)}]
    rows = []
    top = float(finite.max())
    for lo in np.arange(0, top + band, band):
        m = (dist >= lo) & (dist < lo + band)
        if m.any():
            rows.append({"band_start": float(lo), "band_end": float(lo + band), "mean_abs": float(err[m].mean()),
                         "max_abs": float(err[m].max()), "pixels": int(m.sum())})
    return rows


def compare(ref: torch.Tensor, test: torch.Tensor, *, seams_y=(), seams_x=(), band: int = 4) -> dict:
    """Max/mean absolute error, PSNR, per-frame error and (with seams) error by seam distance."""
    _check_same_shape(ref, test)
    diff = (ref.detach().double() - test.detach().double()).abs()
    per_frame = diff.amax(dim=(0, 1, 3, 4))
    out = {
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "psnr_db": psnr(ref, test),
        "frame_max_abs": [float(v) for v in per_frame],
        "frame_psnr_db": [psnr(ref[:, :, i], test[:, :, i]) for i in range(ref.shape[2])],
        "within_8bit_level": bool(diff.max() <= ONE_8BIT_LEVEL),
    }
    if len(seams_y) or len(seams_x):
        out["seam_bands"] = error_by_seam_distance(ref, test, seams_y, seams_x, band)
    return out


def seam_concentration(bands: list[dict], near: float) -> float:
    """Ratio of mean error within ``near`` pixels of a seam to the mean error farther away."""
    near_err = [b["mean_abs"] * b["pixels"] for b in bands if b["band_end"] <= near]
    near_px = [b["pixels"] for b in bands if b["band_end"] <= near]
    far_err = [b["mean_abs"] * b["pixels"] for b in bands if b["band_start"] >= near]
    far_px = [b["pixels"] for b in bands if b["band_start"] >= near]
    if not near_px or not far_px:
        raise ValueError(f"near={near} leaves no bands on one side; bands span {bands[0]['band_start']}–{bands[-1]['band_end']}")
    far = sum(far_err) / sum(far_px)
    nearm = sum(near_err) / sum(near_px)
    return math.inf if far == 0 else nearm / far
