"""Post-hoc compression of stored latent arrays: zstd, delta along time, int8 with n-sigma clipping.

Every function takes a latent array shaped (..., channels, frames, height, width) (a torch tensor
or numpy array; a leading batch axis is allowed) and does not care which model produced it.
Sizes are bytes; "percent of raw" is relative to the latents stored raw at ``storage``
precision (fp16 by default, the baseline of 002_*.txt).  Errors (MSE, max abs error, per-frame
drift) are measured against those raw stored values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

STORAGE_DTYPES = {"fp32": np.float32, "fp16": np.float16}
CHANNEL_AXIS, TIME_AXIS = -4, -3


@dataclass(frozen=True)
class PackResult:
    """One compression method applied to one latent array."""

    method: str
    nbytes: int
    raw_nbytes: int
    lossless: bool
    mse: float
    max_abs_error: float
    frame_mse: list[float] = field(default_factory=list)  # MSE per latent frame: drift over time

    @property
    def percent_of_raw(self) -> float:
        return 100.0 * self.nbytes / self.raw_nbytes

    def as_dict(self) -> dict:
        return {"method": self.method, "bytes": self.nbytes, "percent_of_raw": self.percent_of_raw,
                "lossless": self.lossless, "mse": self.mse, "max_abs_error": self.max_abs_error,
                "frame_mse": list(self.frame_mse)}


def as_latent_array(latents, storage: str = "fp16") -> np.ndarray:
    """The latents as a numpy array rounded to the ``storage`` precision, shape (..., C, T, H, W)."""
    if storage not in STORAGE_DTYPES:
        raise ValueError(f"storage={storage!r} is unknown; valid: {', '.join(STORAGE_DTYPES)}")
    if hasattr(latents, "detach"):
        latents = latents.detach().float().cpu().numpy()
    arr = np.asarray(latents)
    if arr.ndim < 4:
        raise ValueError(f"latents have shape {arr.shape}: need (..., channels, frames, height, width)")
    if arr.shape[TIME_AXIS] < 2:
        raise ValueError(f"latents have {arr.shape[TIME_AXIS]} latent frame(s): delta coding needs at least 2")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"latents have dtype {arr.dtype}: need floating point values")
    if not np.all(np.isfinite(arr)):
        raise ValueError("latents contain NaN or inf")
    return arr.astype(STORAGE_DTYPES[storage])


def zstd_nbytes(data: bytes | np.ndarray, level: int = 3) -> int:
    """Size in bytes of ``data`` compressed with zstd at ``level``."""
    import zstandard

    if not isinstance(level, int) or not 1 <= level <= 22:
        raise ValueError(f"level={level!r} is invalid: zstd levels are integers 1..22")
    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    return len(zstandard.ZstdCompressor(level=level).compress(raw))


def byte_shuffle(arr: np.ndarray) -> bytes:
    """Bytes regrouped by significance (all first bytes, then all second bytes...), as blosc does."""
    a = np.ascontiguousarray(arr)
    return a.view(np.uint8).reshape(-1, a.dtype.itemsize).T.copy().tobytes()


def _errors(ref: np.ndarray, rec: np.ndarray) -> tuple[float, float, list[float]]:
    d = rec.astype(np.float64) - ref.astype(np.float64)
    sq = d * d
    axes = tuple(i for i in range(sq.ndim) if i != sq.ndim + TIME_AXIS)
    return float(sq.mean()), float(np.abs(d).max()), [float(v) for v in sq.mean(axis=axes)]


def time_delta(x: np.ndarray) -> np.ndarray:
    """Frame-to-frame differences along the latent time axis (first frame kept as is), in float32."""
    x = np.asarray(x, dtype=np.float32)
    return np.diff(x, axis=TIME_AXIS, prepend=np.zeros_like(np.take(x, [0], axis=TIME_AXIS)))


def _channel_first(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, CHANNEL_AXIS, 0).reshape(x.shape[CHANNEL_AXIS], -1)


def _per_channel(values: np.ndarray) -> np.ndarray:
    """Shape a per-channel vector (C,) to broadcast onto an array shaped (..., C, T, H, W)."""
    return values.reshape((-1, 1, 1, 1))


def quantize_int8(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Round x / scale to int8 in [-127, 127] (values beyond are clipped)."""
    return np.clip(np.rint(x / scale), -127, 127).astype(np.int8)


def channel_scale(d: np.ndarray, clip_sigma: float | None) -> np.ndarray:
    """Per-channel int8 step: n sigma / 127 of the values (or global max |d| / 127 when ``clip_sigma`` is None)."""
    if clip_sigma is None:
        m = float(np.abs(d).max())
        return np.full((d.shape[CHANNEL_AXIS], 1, 1, 1), max(m, 1e-12) / 127, dtype=np.float32)
    if not isinstance(clip_sigma, (int, float)) or not clip_sigma > 0:
        raise ValueError(f"clip_sigma={clip_sigma!r} is invalid: must be a positive number of standard deviations")
    std = _channel_first(d).std(axis=1)
    return _per_channel(np.maximum(clip_sigma * std, 1e-12) / 127).astype(np.float32)


def delta_int8(latents, clip_sigma: float | None = None, *, closed_loop: bool = False, storage: str = "fp16",
               level: int = 3) -> tuple[np.ndarray, int]:
    """Delta-code along time, quantise deltas to int8 (per channel, clipped at ``clip_sigma`` sigma, or a
    global max-abs scale), zstd the codes; reconstruct by cumulative sum.

    The first frame is stored raw at ``storage`` precision.  ``closed_loop=False`` quantises the true
    deltas (002_*.txt's scheme: errors accumulate in the cumulative sum); ``closed_loop=True`` quantises
    each delta against the previous *reconstructed* frame (DPCM), so errors do not accumulate.
    Returns (reconstruction as float32, compressed bytes).
    """
    x = as_latent_array(latents, storage).astype(np.float32)
    x = np.moveaxis(x, TIME_AXIS, 0)  # (T, ..., C, H, W) -> iterate frames easily
    first = x[0]
    d_true = np.diff(x, axis=0)  # (T-1, ..., C, H, W)
    d_chw = np.moveaxis(d_true, 0, TIME_AXIS)  # back to (..., C, T-1, H, W) for statistics
    scale = channel_scale(d_chw, clip_sigma)  # (C, 1, 1, 1)
    scale_f = scale[..., 0]  # (C, 1, 1): broadcasts onto one frame (..., C, H, W)
    first_stored = first.astype(STORAGE_DTYPES[storage]).astype(np.float32)
    codes = np.empty(d_true.shape, dtype=np.int8)
    rec = np.empty_like(x)
    rec[0] = first_stored
    if closed_loop:
        for k in range(d_true.shape[0]):
            codes[k] = quantize_int8(x[k + 1] - rec[k], scale_f)
            rec[k + 1] = rec[k] + codes[k].astype(np.float32) * scale_f
    else:
        codes[:] = quantize_int8(d_true, scale_f)
        rec[1:] = first_stored + np.cumsum(codes.astype(np.float32) * scale_f, axis=0)
    nbytes = (zstd_nbytes(codes, level) + first_stored.size * np.dtype(STORAGE_DTYPES[storage]).itemsize
              + scale.size * 4)
    return np.moveaxis(rec, 0, TIME_AXIS), nbytes


def int8_per_channel(latents, clip_sigma: float = 6.0, *, storage: str = "fp16", level: int = 3) -> tuple[np.ndarray, int]:
    """No delta: int8 per channel around the channel mean, clipped at ``clip_sigma`` sigma, then zstd.

    Returns (reconstruction as float32, compressed bytes incl. per-channel mean and scale)."""
    x = as_latent_array(latents, storage).astype(np.float32)
    mean = _per_channel(_channel_first(x).mean(axis=1)).astype(np.float32)
    centred = x - mean
    scale = channel_scale(centred, clip_sigma)
    codes = quantize_int8(centred, scale)
    rec = codes.astype(np.float32) * scale + mean
    return rec, zstd_nbytes(codes, level) + (mean.size + scale.size) * 4


def compare_methods(latents, sigmas: Iterable[float] = (3, 4, 6, 8), *, storage: str = "fp16", level: int = 3,
                    closed_loop: bool = True) -> list[PackResult]:
    """Size and error of every method on one latent array (see module docstring).

    Methods: raw; zstd; byte-shuffle + zstd; delta (stored at ``storage``) + zstd; delta + int8 with a
    global scale + zstd; delta + int8 per channel clipped at each n sigma (open loop, as 002_*.txt);
    the same closed loop (if ``closed_loop``); int8 per channel without delta at each n sigma.
    """
    sigmas = list(sigmas)
    ref = as_latent_array(latents, storage)
    reff = ref.astype(np.float32)
    raw = int(ref.nbytes)
    out = [PackResult(f"raw {storage}", raw, raw, True, 0.0, 0.0, [0.0] * ref.shape[TIME_AXIS])]
    out.append(PackResult("zstd", zstd_nbytes(ref, level), raw, True, 0.0, 0.0, [0.0] * ref.shape[TIME_AXIS]))
    out.append(PackResult("byte-shuffle + zstd", zstd_nbytes(byte_shuffle(ref), level), raw, True, 0.0, 0.0,
                          [0.0] * ref.shape[TIME_AXIS]))
    d = time_delta(reff).astype(ref.dtype)  # deltas rounded to the storage precision: near-lossless
    rec = np.cumsum(d.astype(np.float32), axis=TIME_AXIS)
    mse, mx, fm = _errors(reff, rec)
    out.append(PackResult("delta + zstd", zstd_nbytes(d, level), raw, mx == 0.0, mse, mx, fm))

    def add(name, rec_bytes):
        rec_, nb = rec_bytes
        mse_, mx_, fm_ = _errors(reff, rec_)
        out.append(PackResult(name, int(nb), raw, False, mse_, mx_, fm_))

    add("delta + int8 (global max) + zstd", delta_int8(ref, None, storage=storage, level=level))
    for n in sigmas:
        add(f"delta + int8 {n:g}σ + zstd", delta_int8(ref, n, storage=storage, level=level))
    if closed_loop:
        for n in sigmas:
            add(f"delta + int8 {n:g}σ closed-loop + zstd", delta_int8(ref, n, closed_loop=True, storage=storage, level=level))
    for n in sigmas:
        add(f"int8 {n:g}σ (no delta) + zstd", int8_per_channel(ref, n, storage=storage, level=level))
    return out


def delta_variance_ratio(video, step: int = 1) -> float:
    """var(x[t+step] - x[t]) / var(x) along the time axis of a (..., C, T, H, W) array (latents or pixels).

    Below 1, differences carry less energy than the frames and delta coding helps; frames with no
    correlation give 2."""
    if not isinstance(step, int) or step < 1:
        raise ValueError(f"step={step!r} is invalid: must be a positive integer")
    if hasattr(video, "detach"):
        video = video.detach().float().cpu().numpy()
    x = np.asarray(video, dtype=np.float64)
    if x.ndim < 4 or x.shape[TIME_AXIS] <= step:
        raise ValueError(f"video has shape {x.shape}: need (..., C, T, H, W) with more than step={step} frames")
    t = x.shape[TIME_AXIS]
    later = np.take(x, range(step, t), axis=TIME_AXIS)
    earlier = np.take(x, range(0, t - step), axis=TIME_AXIS)
    return float((later - earlier).var() / x.var())


def latent_variance(latents, storage: str = "fp16") -> float:
    """Variance of the stored latents (to express MSE relative to the signal)."""
    return float(as_latent_array(latents, storage).astype(np.float64).var())
