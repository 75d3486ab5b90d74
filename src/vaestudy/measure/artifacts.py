"""Synthetic seams and flicker of known size, placed at known positions: ground truth for the metrics.

Both functions add an artefact to a clean video ``(3, T, H, W)`` in [-1, 1] and return a new
tensor; amplitudes are in decoded units (2.0 = full range, so 1/127.5 is one 8-bit level).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from vaestudy.measure.oracle import seam_distance_map

INJECTIONS = ("brightness", "texture")


def _check_video(video: torch.Tensor) -> None:
    if not isinstance(video, torch.Tensor) or video.ndim != 4 or video.shape[0] != 3:
        shape = tuple(video.shape) if hasattr(video, "shape") else type(video).__name__
        raise ValueError(f"video {shape} must be a (3, frames, height, width) tensor")


def _tile_index(n: int, seams: Sequence[float]) -> np.ndarray:
    centres = np.arange(n) + 0.5
    return np.searchsorted(np.sort(np.asarray(seams, dtype=np.float64)), centres)


def inject_seam(video: torch.Tensor, seams_y=(), seams_x=(), amplitude: float = 0.05,
                width: float = 8.0) -> torch.Tensor:
    """Add a tile-grid artefact: tiles alternate +/- amplitude/2 (a checkerboard), faded with distance.

    Across every seam line the video jumps by ``amplitude``; the offset decays as
    ``exp(-distance / width)`` away from the nearest seam (``width=inf``: a constant offset
    per tile), so the error gathers in a band around the grid like a real tiling error.
    """

    _check_video(video)
    if not width > 0:
        raise ValueError(f"width={width!r} must be > 0 pixels (math.inf for a flat offset per tile)")
    _, _, h, w = video.shape
    parity = (_tile_index(h, seams_y)[:, None] + _tile_index(w, seams_x)[None, :]) % 2
    sign = np.where(parity == 0, 1.0, -1.0)
    dist = seam_distance_map(h, w, seams_y, seams_x)
    fade = np.exp(-np.where(np.isfinite(dist), dist - 0.5, np.inf) / width)
    offset = torch.from_numpy(0.5 * amplitude * sign * fade).to(video)
    return video + offset


def inject_flicker(video: torch.Tensor, boundaries: Sequence[int], amplitude: float = 0.05,
                   kind: str = "brightness", seed: int = 0) -> torch.Tensor:
    """Make the video jump at the given frames: segments between boundaries alternate +/- a pattern.

    ``brightness``: the pattern is a uniform offset of amplitude/2, so every boundary frame is
    ``amplitude`` brighter or darker than the frame before; ``texture``: a fixed seeded noise
    pattern of standard deviation amplitude/2 (fine detail that changes at each boundary).
    """
    _check_video(video)
    if kind not in INJECTIONS:
        raise ValueError(f"kind={kind!r} is unknown; valid: {', '.join(INJECTIONS)}")
    t = video.shape[1]
    bad = [b for b in boundaries if not 0 < int(b) < t]
    if bad:
        raise ValueError(f"boundaries {bad} must lie in 1..{t - 1} (frame indices where a new segment starts)")
    seg = np.searchsorted(np.sort(np.asarray(boundaries, dtype=np.int64)), np.arange(t), side="right")
    sign = torch.from_numpy(np.where(seg % 2 == 0, 1.0, -1.0)).to(video).view(1, t, 1, 1)
    if kind == "brightness":
        pattern = torch.full((3, 1, *video.shape[2:]), 0.5 * amplitude)
    else:
        g = torch.Generator().manual_seed(seed)
        pattern = torch.randn(3, 1, *video.shape[2:], generator=g) * (0.5 * amplitude)
    return video + sign * pattern.to(video)
