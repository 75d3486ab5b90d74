"""Storage, compression and bandwidth arithmetic for video latents (pure functions, no model).

Units, unless a name says otherwise: sizes in bytes; MB = 1e6 bytes, GB = 1e9, TB = 1e12
(decimal, as in the source note ``002_*.txt``); frame rates in fps; link speeds in Gbit/s
(1e9 bit/s); times in seconds.  ``b`` is an MP4's effective bits per pixel (container bytes
x 8 / (H x W x frames)).

The latent geometry of the registry families comes from :data:`vaestudy.registry.families.FAMILIES`;
two reference codecs that are not diffusers families of this project (DC-AE f32c32 and a
Cosmos-style 8x8x8 tokenizer) are defined here in :data:`EXTRA_CODECS`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from vaestudy.registry import FAMILIES

#: Bytes per stored latent value for each precision name.
PRECISION_BYTES: dict[str, float] = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1}
RAW_RGB_BYTES_PER_PIXEL = 3  # 8-bit RGB, the "raw video" every compression factor is measured against
MB, GB, TB = 1e6, 1e9, 1e12
PAD_MODES = ("error", "ceil")


@dataclass(frozen=True)
class Codec:
    """Latent geometry of an autoencoder: spatial factor s, temporal factor t, channels c, and its frame rule."""

    name: str
    spatial_compression: int
    temporal_compression: int
    latent_channels: int
    causal_first_frame: bool  # latent frames = 1 + (frames - 1) / t (first frame encoded alone)
    source: str  # where the factors come from
    # (latent base, latent step, pixel base, pixel step): latent counts base + step*k decode to pixel counts
    # pixel base + pixel step*k (a registry family's VAEFamily.frame_rule); None: from causal_first_frame and t
    frame_rule: tuple[int, int, int, int] | None = None

    @property
    def s(self) -> int:
        return self.spatial_compression

    @property
    def t(self) -> int:
        return self.temporal_compression

    @property
    def c(self) -> int:
        return self.latent_channels

    @property
    def rule(self) -> tuple[int, int, int, int]:
        """(latent base, latent step, pixel base, pixel step) of the frame counts: ``frame_rule``, else 1 + (n-1)/t
        for a causal codec and n/t otherwise."""
        if self.frame_rule is not None:
            return self.frame_rule
        return (1, 1, 1, self.t) if self.causal_first_frame else (1, 1, self.t, self.t)

    @property
    def steady_t(self) -> float:
        """Pixel frames per latent frame once the first frames are past (pixel step / latent step of :attr:`rule`);
        equal to ``t`` except for a frame grid such as 22 + 17k pixel frames <-> 7 + 5k latent frames."""
        _, lstep, _, pstep = self.rule
        return pstep / lstep


#: Reference codecs the study compares with; not loadable models of this project.
EXTRA_CODECS: dict[str, Codec] = {
    "dc-ae-f32c32": Codec("dc-ae-f32c32", 32, 1, 32, False,
                          "image autoencoder DC-AE f32c32 (s=32, c=32, per frame), as used in 002_*.txt"),
    "cosmos-8x8x8": Codec("cosmos-8x8x8", 8, 8, 16, True,
                          "Cosmos-style 8x8x8 video tokenizer (s=8, t=8, c=16), as in 002_*.txt"),
}


def registry_codecs() -> dict[str, Codec]:
    """Codec views of every registry family (factors read from ``vaestudy.registry.families.FAMILIES``)."""
    return {
        name: Codec(name, f.spatial_compression, f.temporal_compression, f.latent_channels, f.causal_frames,
                    f"vaestudy.registry.families.FAMILIES[{name!r}] ({f.diffusers_class})", frame_rule=f.frame_rule)
        for name, f in FAMILIES.items()
    }


def all_codecs() -> dict[str, Codec]:
    """Registry families followed by :data:`EXTRA_CODECS`."""
    return {**registry_codecs(), **EXTRA_CODECS}


def get_codec(codec: str | Codec) -> Codec:
    """A :class:`Codec` by name (or passed through); ValueError listing valid names otherwise."""
    if isinstance(codec, Codec):
        return codec
    table = all_codecs()
    if codec not in table:
        raise ValueError(f"codec={codec!r} is unknown; valid codecs: {', '.join(table)}")
    return table[codec]


#: Inputs stated in the source note 002_*.txt (Doom gameplay encoded with DC-AE f32c32):
#: label -> (height px, width px, b bits per pixel).  The note measured b at 480p and estimated
#: the other resolutions; these are its inputs, cited, not our measurements.
NOTE_002_BPP: dict[str, tuple[int, int, float]] = {
    "240p": (240, 426, 0.80), "360p": (360, 640, 0.68), "480p": (480, 640, 0.57), "720p": (720, 1280, 0.40),
    "1080p": (1080, 1920, 0.30), "1440p": (1440, 2560, 0.22), "4K": (2160, 3840, 0.17),
}
NOTE_002_FPS = 35  # fps of the note's recordings
NOTE_002_HOURS = 340  # size of the note's dataset, hours of video

# ---- validation ----------------------------------------------------------------------
def _positive(name: str, value, *, integer: bool = False) -> None:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not value > 0 or (not integer and not math.isfinite(value)):
        kind = "a positive integer" if integer else "a positive finite number"
        raise ValueError(f"{name}={value!r} is invalid: must be {kind}")


def _non_negative(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} is invalid: must be a finite number >= 0")


def bytes_per_value(precision: str) -> float:
    """Bytes per latent value for a precision name (fp32 4, fp16/bf16 2, fp8/int8 1)."""
    if precision not in PRECISION_BYTES:
        raise ValueError(f"precision={precision!r} is unknown; valid: {', '.join(PRECISION_BYTES)}")
    return PRECISION_BYTES[precision]


def _check_pad(pad: str) -> None:
    if pad not in PAD_MODES:
        raise ValueError(f"pad={pad!r} is unknown; valid: {', '.join(PAD_MODES)}")


def latent_side(pixels: int, factor: int, *, pad: str = "error", name: str = "size") -> int:
    """Latent size along one axis: pixels / factor, or ceil() of it with ``pad='ceil'``."""
    _positive(name, pixels, integer=True)
    _positive("factor", factor, integer=True)
    _check_pad(pad)
    if pixels % factor:
        if pad == "error":
            raise ValueError(f"{name}={pixels} is not a multiple of the compression factor {factor}; "
                             f"use a multiple of {factor} or pad='ceil' (pads up to {math.ceil(pixels / factor) * factor})")
        return math.ceil(pixels / factor)
    return pixels // factor


def latent_frames(codec: str | Codec, frames: int, *, pad: str = "error") -> int:
    """Latent frames for ``frames`` pixel frames by the codec's frame rule (:attr:`Codec.rule`): 1 + (frames-1)/t
    for causal codecs, frames/t for per-frame ones, base + step*k for a family's frame grid (24 + 16k pixel frames
    -> 6 + 4k latent frames). ``pad='ceil'`` rounds an invalid count up to the next valid one."""
    cd = get_codec(codec)
    _positive("frames", frames, integer=True)
    _check_pad(pad)
    lbase, lstep, pbase, pstep = cd.rule
    if frames < pbase:
        if pad == "error":
            raise ValueError(f"frames={frames} is fewer than {cd.name} decodes: valid counts are {pbase} + {pstep}k; "
                             f"use pad='ceil' (pads up to {pbase})")
        return lbase
    if frames == pbase:
        return lbase
    return lbase + lstep * latent_side(frames - pbase, pstep, pad=pad, name=f"frames - {pbase}")


def latent_shape(codec: str | Codec, frames: int, height: int, width: int, *, pad: str = "error") -> tuple[int, int, int, int]:
    """(channels, latent frames, latent height, latent width) of a pixel video of that size.

    ``pad='error'`` (default) rejects sizes the factors do not divide; ``pad='ceil'`` pads up,
    which is what 002_*.txt's latent dims imply (240 px / 32 -> 8 rows).
    """
    cd = get_codec(codec)
    return (cd.c, latent_frames(cd, frames, pad=pad),
            latent_side(height, cd.s, pad=pad, name="height"), latent_side(width, cd.s, pad=pad, name="width"))


def latent_elements(codec: str | Codec, frames: int, height: int, width: int, *, pad: str = "error") -> int:
    """Number of latent values for a pixel video."""
    return math.prod(latent_shape(codec, frames, height, width, pad=pad))


def latent_bytes(codec: str | Codec, frames: int, height: int, width: int, precision: str = "fp16",
                 *, pad: str = "error") -> float:
    """Bytes of uncompressed latents for a pixel video at a precision."""
    return latent_elements(codec, frames, height, width, pad=pad) * bytes_per_value(precision)


# ---- ratios --------------------------------------------------------------------------
def compression_vs_raw(s: int, c: int, precision: str = "fp16", t: int = 1) -> float:
    """Raw 8-bit RGB bytes over latent bytes: 3 s^2 t / (c p) (asymptotic, ignores the causal first frame)."""
    _positive("s", s, integer=True)
    _positive("c", c, integer=True)
    _positive("t", t)
    return RAW_RGB_BYTES_PER_PIXEL * s * s * t / (c * bytes_per_value(precision))


def h264_compression_vs_raw(bpp: float) -> float:
    """Raw 8-bit RGB bytes over MP4 bytes at ``bpp`` bits per pixel: 24 / b."""
    _positive("bpp", bpp)
    return RAW_RGB_BYTES_PER_PIXEL * 8 / bpp


def storage_ratio(*, spatial: int, channels: int, bits_per_pixel: float, precision: str = "fp16",
                  temporal: float = 1) -> float:
    """R = latent bytes / MP4 bytes = c p 8 / (b s^2 t); below 1 the latents are smaller.

    Keyword-only, in the formula's terms: ``spatial`` s (pixels per latent pixel along a side), ``channels`` c,
    ``bits_per_pixel`` b of the MP4, ``precision`` (a name, e.g. "fp16", whose bytes per value are p), ``temporal`` t.
    """
    _positive("bits_per_pixel", bits_per_pixel)
    return compression_vs_raw_to_ratio(compression_vs_raw(spatial, channels, precision, temporal), bits_per_pixel)


def compression_vs_raw_to_ratio(latent_compression: float, bpp: float) -> float:
    """R from a latent compression factor vs raw RGB and the MP4's bits per pixel."""
    _positive("latent_compression", latent_compression)
    return h264_compression_vs_raw(bpp) / latent_compression


def codec_storage_ratio(codec: str | Codec, bpp: float, precision: str = "fp16") -> float:
    """:func:`storage_ratio` for a named codec."""
    cd = get_codec(codec)
    return storage_ratio(spatial=cd.s, channels=cd.c, bits_per_pixel=bpp, precision=precision, temporal=cd.steady_t)


def min_temporal_compression(s: int, c: int, bpp: float, precision: str = "fp16") -> float:
    """Smallest t at which latents stop being larger than the MP4 (R(t) = 1): c p 8 / (b s^2)."""
    return storage_ratio(spatial=s, channels=c, bits_per_pixel=bpp, precision=precision, temporal=1)


# ---- rates and dataset sizes --------------------------------------------------------
def mp4_bytes_per_second(height: int, width: int, fps: float, bpp: float) -> float:
    """MP4 bytes per second of video: b H W F / 8."""
    for n, v in (("height", height), ("width", width)):
        _positive(n, v, integer=True)
    _positive("fps", fps)
    _positive("bpp", bpp)
    return bpp * height * width * fps / 8


def latent_bytes_per_second(codec: str | Codec, height: int, width: int, fps: float, precision: str = "fp16",
                            *, pad: str = "error") -> float:
    """Latent bytes per second of video: c (H/s)(W/s) p F / t (the steady-state rate, t = :attr:`Codec.steady_t`;
    no first-frame term)."""
    cd = get_codec(codec)
    _positive("fps", fps)
    h = latent_side(height, cd.s, pad=pad, name="height")
    w = latent_side(width, cd.s, pad=pad, name="width")
    return cd.c * h * w * bytes_per_value(precision) * fps / cd.steady_t


def mb_per_minute(bytes_per_second: float) -> float:
    """MB (1e6 bytes) per minute from bytes per second."""
    _non_negative("bytes_per_second", bytes_per_second)
    return bytes_per_second * 60 / MB


def dataset_bytes(bytes_per_second: float, hours: float) -> float:
    """Bytes for ``hours`` of video at a given rate."""
    _non_negative("bytes_per_second", bytes_per_second)
    _positive("hours", hours)
    return bytes_per_second * hours * 3600


def format_bytes(nbytes: float, digits: int = 2) -> str:
    """Decimal human form: '19 GB', '0.82 TB' style (B, KB, MB, GB, TB)."""
    _non_negative("nbytes", nbytes)
    for unit, scale in (("TB", TB), ("GB", GB), ("MB", MB), ("KB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.{digits}f} {unit}"
    return f"{nbytes:.0f} B"


@dataclass(frozen=True)
class StorageRow:
    """One resolution of a storage comparison (MB per minute, ratios R = latent/MP4)."""

    label: str
    height: int
    width: int
    latent_hw: tuple[int, int]
    bpp: float
    mp4_mb_min: float
    latent_mb_min: dict[str, float] = field(default_factory=dict)  # variant -> MB/min
    ratio: dict[str, float] = field(default_factory=dict)  # variant -> R


def storage_row(label: str, height: int, width: int, bpp: float, fps: float, codec: str | Codec,
                variants: dict[str, tuple[float, str]] | None = None, *, pad: str = "ceil") -> StorageRow:
    """MB/min of MP4 and of latent variants at one resolution.

    ``variants`` maps a label to (extra temporal factor, precision), e.g. ``{"t=8+fp8": (8, "fp8")}``;
    the extra factor multiplies the codec's own t (002_*.txt's hypothetical t applied to DC-AE).
    R is computed from the padded latent grid, as 002_*.txt's table does.
    """
    cd = get_codec(codec)
    variants = variants or {"fp16": (1, "fp16")}
    mp4 = mp4_bytes_per_second(height, width, fps, bpp)
    lat, rat = {}, {}
    for name, (extra_t, precision) in variants.items():
        _positive(f"variants[{name!r}] temporal factor", extra_t)
        rate = latent_bytes_per_second(cd, height, width, fps, precision, pad=pad) / extra_t
        lat[name] = mb_per_minute(rate)
        rat[name] = rate / mp4
    hw = (latent_side(height, cd.s, pad=pad, name="height"), latent_side(width, cd.s, pad=pad, name="width"))
    return StorageRow(label, height, width, hw, bpp, mb_per_minute(mp4), lat, rat)


# ---- cross-device bandwidth and streaming budget -------------------------------------
INDEX_CONTAINERS = {"packed": None, "int16": 16, "int32": 32, "int64": 64}


def bits_per_index(codebook_size: int) -> int:
    """Bits needed for one code index: ceil(log2(codebook_size)) (at least 1)."""
    _positive("codebook_size", codebook_size, integer=True)
    if codebook_size < 2:
        raise ValueError(f"codebook_size={codebook_size} is invalid: a codebook needs at least 2 entries")
    return max(1, math.ceil(math.log2(codebook_size)))


def window_bytes_continuous(latent_shape_: Iterable[int], precision: str = "fp32") -> float:
    """Bytes to send one window of continuous latents (e.g. quant of shape (1, 18, 5, 16, 16))."""
    shape = tuple(latent_shape_)
    if not shape:
        raise ValueError("latent_shape_=() is invalid: give at least one dimension")
    for i, d in enumerate(shape):
        _positive(f"latent_shape_[{i}]", d, integer=True)
    return math.prod(shape) * bytes_per_value(precision)


def window_bytes_indices(positions: int, codebook_size: int, container: str = "packed") -> float:
    """Bytes to send one window of discrete codes: ``positions`` indices, bit-packed or in an int container."""
    _positive("positions", positions, integer=True)
    if container not in INDEX_CONTAINERS:
        raise ValueError(f"container={container!r} is unknown; valid: {', '.join(INDEX_CONTAINERS)}")
    need = bits_per_index(codebook_size)
    bits = INDEX_CONTAINERS[container]
    if bits is None:
        return math.ceil(positions * need / 8)
    if bits < need:
        raise ValueError(f"container={container!r} holds {bits} bits but codebook_size={codebook_size} needs {need}")
    return positions * bits / 8


def transfer_time_s(nbytes: float, link_gbit_s: float, rtt_s: float = 0.0) -> float:
    """Seconds to move ``nbytes`` over a link of ``link_gbit_s`` Gbit/s, plus a round trip ``rtt_s``."""
    _non_negative("nbytes", nbytes)
    _positive("link_gbit_s", link_gbit_s)
    _non_negative("rtt_s", rtt_s)
    return nbytes * 8 / (link_gbit_s * 1e9) + rtt_s


def window_fill_time_s(frames: int, fps: float) -> float:
    """Seconds of capture before a window of ``frames`` frames is complete: frames / fps."""
    _positive("frames", frames, integer=True)
    _positive("fps", fps)
    return frames / fps


@dataclass(frozen=True)
class LatencyBudget:
    """First-frame-in to first-frame-out latency of a windowed encode -> send -> decode stream (seconds)."""

    fill_s: float
    encode_s: float
    transfer_s: float
    decode_s: float
    playout_s: float  # extra delay the output buffer adds to absorb jitter

    @property
    def total_s(self) -> float:
        return self.fill_s + self.encode_s + self.transfer_s + self.decode_s + self.playout_s

    def as_dict(self) -> dict[str, float]:
        return {"fill": self.fill_s, "encode": self.encode_s, "transfer": self.transfer_s,
                "decode": self.decode_s, "playout": self.playout_s, "total": self.total_s}


def latency_budget(frames: int, fps: float, encode_s: float, decode_s: float, *, nbytes: float = 0.0,
                   link_gbit_s: float = 1.0, rtt_s: float = 0.0, playout_s: float = 0.0) -> LatencyBudget:
    """Latency budget: fill (frames/fps) + encode + transfer(nbytes, link) + decode + playout delay."""
    _non_negative("encode_s", encode_s)
    _non_negative("decode_s", decode_s)
    _non_negative("playout_s", playout_s)
    return LatencyBudget(window_fill_time_s(frames, fps), encode_s,
                         transfer_time_s(nbytes, link_gbit_s, rtt_s), decode_s, playout_s)


def pipeline_throughput_fps(frames_per_window: int, stage_times_s: Iterable[float]) -> float:
    """Frames per second a pipelined encode/send/decode chain sustains: window / slowest stage."""
    _positive("frames_per_window", frames_per_window, integer=True)
    times = list(stage_times_s)
    if not times:
        raise ValueError("stage_times_s=[] is invalid: give at least one stage time")
    for i, s in enumerate(times):
        _non_negative(f"stage_times_s[{i}]", s)
    slowest = max(times)
    if slowest == 0:
        raise ValueError("stage_times_s are all 0: throughput would be infinite")
    return frames_per_window / slowest


def output_buffer_frames(frames_per_window: int, output_fps: float, jitter_s: float) -> int:
    """Output ring-buffer capacity (frames) to play at ``output_fps`` through ``jitter_s`` of late windows.

    A window arrives as a burst of ``frames_per_window`` frames; to survive a window arriving up to
    ``jitter_s`` late, playback starts ``jitter_s`` after the first window and the buffer must hold
    the burst plus the ceil(jitter_s * output_fps) frames played meanwhile.
    """
    _positive("frames_per_window", frames_per_window, integer=True)
    _positive("output_fps", output_fps)
    _non_negative("jitter_s", jitter_s)
    return frames_per_window + math.ceil(round(jitter_s * output_fps, 9))


def check_sustainable(frames_per_window: int, window_period_s: float, output_fps: float) -> float:
    """Production rate (fps) of windows every ``window_period_s``; ValueError if below ``output_fps``
    (then no finite buffer avoids underrun)."""
    _positive("frames_per_window", frames_per_window, integer=True)
    _positive("window_period_s", window_period_s)
    _positive("output_fps", output_fps)
    rate = frames_per_window / window_period_s
    if rate < output_fps:
        raise ValueError(f"output_fps={output_fps} exceeds the production rate {rate:.2f} fps "
                         f"({frames_per_window} frames every {window_period_s} s): the buffer will underrun")
    return rate


def queue_fill_time_s(capacity_windows: int, producer_period_s: float, consumer_period_s: float) -> float:
    """Seconds until a bounded queue of ``capacity_windows`` fills when a producer adds a window every
    ``producer_period_s`` and a consumer removes one every ``consumer_period_s`` (math.inf if it never
    fills); from then on backpressure blocks the producer (or windows are dropped)."""
    _positive("capacity_windows", capacity_windows, integer=True)
    _positive("producer_period_s", producer_period_s)
    _positive("consumer_period_s", consumer_period_s)
    growth = 1 / producer_period_s - 1 / consumer_period_s  # windows per second
    return math.inf if growth <= 0 else capacity_windows / growth


def buffer_seconds(frames: int, fps: float) -> float:
    """Seconds of playback a buffer of ``frames`` holds at ``fps``."""
    _positive("frames", frames, integer=True)
    _positive("fps", fps)
    return frames / fps


# ---- one-line summaries (what the notebook calculators print) -------------------------
def ratio_summary(codec: str | Codec, bpp: float, precision: str = "fp16", height: int = 480, width: int = 640,
                  fps: float = 35.0) -> str:
    """One line: compression vs raw RGB, R against an MP4 at ``bpp``, MB/min of both, t needed to beat it."""
    cd = get_codec(codec)
    raw_x = compression_vs_raw(cd.s, cd.c, precision, cd.steady_t)
    lat = mb_per_minute(latent_bytes_per_second(cd, height, width, fps, precision, pad="ceil"))
    mp4 = mb_per_minute(mp4_bytes_per_second(height, width, fps, bpp))
    r = lat / mp4
    verdict = "smaller than" if r < 1 else "larger than"
    t_need = r * cd.steady_t  # R scales as 1/t: total t at which R = 1
    return (f"{cd.name} {precision} at {height}x{width}, {fps:g} fps, b={bpp:g}: {raw_x:.1f}x vs raw RGB, "
            f"R = {r:.2f} ({lat:.1f} vs {mp4:.1f} MB/min, latents {verdict} the MP4); "
            f"R < 1 needs total t > {t_need:.2f} (codec has t={cd.steady_t:g})")


def budget_summary(frames: int, fps: float, encode_s: float, decode_s: float, nbytes: float,
                   link_gbit_s: float, jitter_s: float = 0.0, output_fps: float | None = None) -> str:
    """One line: latency budget, sustained throughput and output buffer size for a windowed stream."""
    out_fps = fps if output_fps is None else output_fps
    transfer = transfer_time_s(nbytes, link_gbit_s)
    b = latency_budget(frames, fps, encode_s, decode_s, nbytes=nbytes, link_gbit_s=link_gbit_s, playout_s=jitter_s)
    thr = pipeline_throughput_fps(frames, [encode_s, transfer, decode_s])
    buf = output_buffer_frames(frames, out_fps, jitter_s)
    live = "keeps up with" if thr >= fps else "falls behind"
    return (f"{frames} frames @ {fps:g} fps: fill {b.fill_s:.3f} + encode {encode_s:.3f} + transfer "
            f"{transfer * 1e3:.3f} ms + decode {decode_s:.3f} + playout {jitter_s:.3f} = {b.total_s:.3f} s to first "
            f"frame; throughput {thr:.1f} fps ({live} the input); output buffer {buf} frames "
            f"({buffer_seconds(buf, out_fps):.2f} s at {out_fps:g} fps)")
