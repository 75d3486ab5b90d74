"""Measure an MP4's effective bits per pixel b by encoding real frames with libx264 (PyAV).

Encodes go to an in-memory MP4 (``io.BytesIO``), yuv420p, constant rate factor (CRF) mode,
single-threaded so the byte count is reproducible for a given PyAV/x264 build.
b = 8 x container bytes / (H x W x frames).  Grid measurements append one JSON line per encode
and resume from the lines already written.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from vaestudy.clock import now
from vaestudy.data import clip_info, read_frames

DEFAULT_PRESET = "medium"  # x264's own default preset
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
STANDARD_HEIGHTS = (144, 240, 360, 480, 720)


def bits_per_pixel(nbytes: int, height: int, width: int, frames: int) -> float:
    """Effective bits per pixel: 8 x nbytes / (height x width x frames)."""
    for name, v in (("nbytes", nbytes), ("height", height), ("width", width), ("frames", frames)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{name}={v!r} is invalid: must be a positive integer")
    return 8 * int(nbytes) / (height * width * frames)


def scaled_size(src_height: int, src_width: int, height: int) -> tuple[int, int]:
    """(height, width) at ``height`` rows keeping the aspect ratio, width rounded to an even number."""
    if not isinstance(height, int) or height <= 0 or height % 2:
        raise ValueError(f"height={height!r} is invalid: must be a positive even integer (yuv420p)")
    if height > src_height:
        raise ValueError(f"height={height} exceeds the source height {src_height}: upscaling is not measured")
    width = int(round(src_width * height / src_height / 2)) * 2
    return height, max(2, width)


def sizes_for(src_height: int, src_width: int, heights: Iterable[int] = STANDARD_HEIGHTS) -> list[tuple[int, int]]:
    """The (height, width) pairs from ``heights`` the source allows (no upscaling), plus the native size
    when some requested height exceeds the source (so a small clip is still measured at its largest)."""
    heights = list(heights)
    out = [scaled_size(src_height, src_width, h) for h in heights if h <= src_height]
    native = (src_height - src_height % 2, src_width - src_width % 2)
    if any(h > src_height for h in heights) and all(h != native[0] for h, _ in out):
        out.append(native)
    return sorted(out)


def encode_h264(frames_rgb: np.ndarray, *, crf: float, fps: float = 25.0, size: tuple[int, int] | None = None,
                preset: str = DEFAULT_PRESET, threads: int = 1) -> dict:
    """Encode uint8 RGB frames (T, H, W, 3) to an in-memory MP4 with libx264; returns sizes and b.

    ``size=(height, width)`` rescales each frame (swscale, bicubic) while converting to yuv420p.
    Returns container_bytes, stream_bytes (sum of packet payloads), bpp (from container bytes),
    encode_s (wall time) and the settings.
    """
    import av

    arr = np.asarray(frames_rgb)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or arr.shape[0] < 1:
        raise ValueError(f"frames_rgb has shape {arr.shape} dtype {arr.dtype}: need uint8 (frames, height, width, 3)")
    if not isinstance(crf, (int, float)) or not 0 <= crf <= 51:
        raise ValueError(f"crf={crf!r} is invalid: libx264 CRF must be in [0, 51]")
    if preset not in X264_PRESETS:
        raise ValueError(f"preset={preset!r} is unknown; valid x264 presets: {', '.join(X264_PRESETS)}")
    if not fps > 0:
        raise ValueError(f"fps={fps!r} is invalid: must be > 0")
    h, w = size if size is not None else arr.shape[1:3]
    if h % 2 or w % 2 or h <= 0 or w <= 0:
        raise ValueError(f"size={(h, w)} is invalid: yuv420p needs positive even height and width")
    from fractions import Fraction

    buf = io.BytesIO()
    stream_bytes = 0
    t0 = now()
    with av.open(buf, mode="w", format="mp4") as container:
        st = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"crf": str(crf), "preset": preset}
        st.codec_context.thread_count = threads
        for fr in arr:
            vf = av.VideoFrame.from_ndarray(fr, format="rgb24").reformat(width=w, height=h, format="yuv420p")
            for pkt in st.encode(vf):
                stream_bytes += pkt.size
                container.mux(pkt)
        for pkt in st.encode():
            stream_bytes += pkt.size
            container.mux(pkt)
    encode_s = now() - t0
    nbytes = buf.getbuffer().nbytes
    frames = arr.shape[0]
    return {"height": h, "width": w, "frames": frames, "fps": fps, "crf": crf, "preset": preset,
            "pix_fmt": "yuv420p", "threads": threads, "container_bytes": nbytes, "stream_bytes": stream_bytes,
            "bpp": bits_per_pixel(nbytes, h, w, frames), "stream_bpp": bits_per_pixel(max(stream_bytes, 1), h, w, frames),
            "encode_s": encode_s}


def load_jsonl(path: str | os.PathLike) -> list[dict]:
    """All records of a JSON-lines file ([] if it does not exist); a torn last line is skipped."""
    p = Path(path)
    if not p.exists():
        return []
    rows = []
    for line in p.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # an interrupted write leaves at most one partial line
            continue
    return rows


def _key(row: dict) -> tuple:
    return (row["clip"], row["height"], row["width"], float(row["crf"]), row["preset"], row["frames"])


def measure_bpp_grid(clips: Iterable[str], crfs: Iterable[float], heights: Iterable[int] = STANDARD_HEIGHTS, *,
                     out: str | os.PathLike, preset: str = DEFAULT_PRESET, max_frames: int | None = None,
                     verbose: bool = False) -> list[dict]:
    """Measure b for every clip x size (from ``heights``, no upscaling) x CRF; append each result
    to the JSONL ``out`` as it finishes and skip combinations already there (resume).

    Returns the rows for the requested grid (old and new).  ``max_frames`` keeps the first frames only.
    """
    import av


    crfs = [float(c) for c in crfs]
    heights = list(heights)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {_key(r): r for r in load_jsonl(out)}
    result = []
    for clip in clips:
        info = clip_info(clip)
        n = info["frames"] if max_frames is None else min(info["frames"], max_frames)
        sizes = sizes_for(info["height"], info["width"], heights)
        todo = [(hw, c) for hw in sizes for c in crfs if (clip, hw[0], hw[1], c, preset, n) not in done]
        frames = read_frames(clip)[:n] if todo else None
        for hw in sizes:
            for c in crfs:
                key = (clip, hw[0], hw[1], c, preset, n)
                if key in done:
                    result.append(done[key])
                    continue
                row = {"clip": clip, "source_height": info["height"], "source_width": info["width"],
                       **encode_h264(frames, crf=c, fps=info["fps"], size=hw, preset=preset),
                       "av_version": av.__version__, "libavcodec": av.library_versions.get("libavcodec")}
                row["crf"] = c
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                done[key] = row
                result.append(row)
                if verbose:
                    print(f"{clip} {hw[0]}x{hw[1]} crf={c:g}: b={row['bpp']:.4f} ({row['encode_s']:.1f} s)")
    return result


def bpp_table(rows: Iterable[dict], preset: str = DEFAULT_PRESET) -> dict[tuple[str, int, int], dict[float, float]]:
    """Group the rows of one x264 ``preset`` as {(clip, height, width): {crf: bpp}} (sorted by clip, height)."""
    if preset not in X264_PRESETS:
        raise ValueError(f"preset={preset!r} is unknown; valid x264 presets: {', '.join(X264_PRESETS)}")
    table: dict[tuple[str, int, int], dict[float, float]] = {}
    for r in sorted((r for r in rows if r["preset"] == preset), key=lambda r: (r["clip"], r["height"], float(r["crf"]))):
        table.setdefault((r["clip"], r["height"], r["width"]), {})[float(r["crf"])] = r["bpp"]
    return table
