"""What the study knows about one diffusers video VAE family without building it: :class:`VAEFamily`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class VAEFamily:
    """Static facts about one diffusers video VAE family (no model is built)."""

    name: str
    diffusers_class: str
    repo_id: str
    subfolder: str
    spatial_compression: int
    temporal_compression: int
    latent_channels: int
    causal: bool  # decoder convolutions are causal in time
    cache: str | None  # name of the decoder's carried temporal cache, if diffusers exposes one
    frame_step: int  # valid pixel frame counts are 1 + frame_step * k
    clamps_output: bool  # decode() clamps the output to [-1, 1]
    norm: str  # normalisation inside the decoder: "rms" (per-pixel) or "group" (spans space and time)
    tiling_defaults: dict[str, Any]
    decode_notes: str  # what the family's own decode() does inside
    tiny_config: dict[str, Any] = field(default_factory=dict)
    full_config: dict[str, Any] = field(default_factory=dict)  # overrides of the class defaults
    chunk_multiple: int = 1  # a streamed chunk must hold a multiple of this many latent frames
    chunk_reason: str = ""  # why, when chunk_multiple > 1
    decode_batch: int | None = None  # latent frames per decoder call inside decode() (None: one pass or windows)
    cache_module: str | None = None  # "diffusers module:class" of the causal conv that holds one cache slot
    attention_block: str | None = None  # class name of the decoder's mid-block attention, if it has one
    # (latent base, latent step, pixel base, pixel step) for a family whose frame counts do not follow the causal rule
    # 1 + frame_step*k: valid latent counts are base + step*k and decode to pixel base + pixel step*k; None: that rule
    frame_grid: tuple[int, int, int, int] | None = None
    # diffusers' spatial tiling inside the family's own decode(): "off" (untiled unless enabled), "default" (the
    # released model decodes with tiling on), "only" (decode() has no untiled path)
    decode_tiling: str = "off"
    per_frame_latents: bool = False  # decode() takes (batch*frames, C, h, w) latents plus num_frames (2-D latents)
    output_layout: str = "bcthw"  # axis order of decode().sample; "btchw": frames before channels
    full_config_source: str = ""  # where the released config's values in full_config were read
    # the decoder's attention builds a dense N x N mask over every latent position of the clip (N = frames*h*w)
    dense_attention_mask: bool = False
    # How an exact split decode (pipelines/exact_split.py) treats each family-defined decoder module class, checked
    # by hand against the diffusers source: "composite" (its own code is reshapes, time concatenation, nearest
    # interpolation by integer factors: local once every slab starts on a latent row), "pointwise" (per pixel, e.g.
    # an RMS norm over channels), "upsample" (an nn.Upsample subclass), "conv" (a Conv subclass whose spatial zero
    # padding is the conv's own ``padding``), "conv:<attr>" (a Conv subclass that zero-pads itself with F.pad from the
    # tuple in attribute <attr>, F.pad order). The mid-block ``attention_block`` is gathered. A class listed nowhere
    # makes the split decode refuse the model rather than guess.
    split_rules: dict[str, str] = field(default_factory=dict)
    # attribute values a module class must hold for its rule to apply: {class: {attribute: (valid values, ...)}}
    split_requires: dict[str, dict[str, tuple]] = field(default_factory=dict)
    # streaming (decode/streams.py): the fewest latent frames one streamed decoder call may hold (chunk_reason says why)
    chunk_min: int = 1
    # a decoder norm pools statistics over the frames of one call (None: as ``norm`` says, "group" pools; False for
    # a GroupNorm applied frame by frame)
    norm_pools_frames: bool | None = None
    # why carrying the cache still is not the family's decode() arithmetic although no norm pools frames ("": it is)
    stream_caveat: str = ""
    # (latent frames of the first segment, of each later one) when decode() splits the latent into segments that
    # share one cache; a last segment shorter than ``chunk_min`` would decode to too few frames, so such counts are
    # refused (None: decode() makes no segments of its own)
    decode_segments: tuple[int, int] | None = None

    # ---- streaming and the family's own decode ----------------------------------------
    @property
    def streams_exactly(self) -> bool:
        """Carrying the cache is the full decode's arithmetic: a cache, no norm pooling over a chunk's frames, and no
        caveat of the class's cache protocol (``stream_caveat``)."""
        pools = self.norm != "rms" if self.norm_pools_frames is None else self.norm_pools_frames
        return self.streamable and not pools and not self.stream_caveat

    @property
    def default_chunk(self) -> int:
        """The smallest chunk (latent frames) a stream of this family accepts: its default."""
        return self.chunk_multiple * -(-self.chunk_min // self.chunk_multiple)

    @property
    def window_overlap(self) -> int:
        """Latent frames of context for overlapping windows: the fewest that keep every window a valid length."""
        step = self.frame_step // self.temporal_compression
        return 2 if step == 1 else 2 * step - 1

    @property
    def temporal_window(self) -> tuple[int, int] | None:
        """(pixel frames per window, stride) of the family's own temporal tiling in decode(), if it has one."""
        d = self.tiling_defaults
        if "tile_sample_min_num_frames" not in d:
            return None
        return d["tile_sample_min_num_frames"] + 1, d["tile_sample_stride_num_frames"]

    def own_decode_calls(self, latent_frames: int) -> tuple[int, int]:
        """(decoder calls, pixel frames per call) that the family's own ``decode()`` makes for a latent."""
        t = self.temporal_compression
        frames = self.pixel_frames(latent_frames)
        if self.decode_batch:
            return max(1, latent_frames // self.decode_batch), self.decode_batch * t
        if self.decode_segments:
            first, later = self.decode_segments
            return 1 + max(0, -(-(latent_frames - first) // later)), self.pixel_frames(min(first, latent_frames))
        window = self.temporal_window
        if window and latent_frames > (window[0] - 1) // t:
            return max(1, math.ceil((frames - window[0]) / window[1]) + 1), window[0]
        return 1, frames

    def check_chunk(self, chunk: int, name: str = "chunk") -> None:
        """ValueError naming ``name`` unless ``chunk`` is a valid number of latent frames per streamed step."""
        if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
            raise ValueError(f"{name}={chunk!r} must be an integer >= 1 (latent frames per step)")
        if chunk < self.chunk_min:
            raise ValueError(
                f"{name}={chunk} is invalid for {self.name}: chunks must hold at least {self.chunk_min} latent frames "
                f"(valid: {self.default_chunk}, {self.default_chunk + self.chunk_multiple}, ...)"
                + (f": {self.chunk_reason}" if self.chunk_reason else ""))
        if chunk % self.chunk_multiple:
            raise ValueError(
                f"{name}={chunk} is invalid for {self.name}: chunks must hold a multiple of {self.chunk_multiple} "
                f"latent frames (valid: {self.chunk_multiple}, {2 * self.chunk_multiple}, ...)"
                + (f": {self.chunk_reason}" if self.chunk_reason else ""))

    # ---- frame counts -------------------------------------------------------------
    @property
    def frame_rule(self) -> tuple[int, int, int, int]:
        """(latent base, latent step, pixel base, pixel step): valid latent frame counts are ``base + step*k``."""
        if self.frame_grid is not None:
            return self.frame_grid
        return 1, self.frame_step // self.temporal_compression, 1, self.frame_step

    @property
    def frame_rule_text(self) -> str:
        """The valid pixel frame counts in words: ``"1 + 4k"``, ``"24 + 16k"``; less the counts whose last decode()
        segment would be too short: ``"1 + 4k, except 21 + 16k"``."""
        lbase, lstep, base, step = self.frame_rule
        text = f"{base} + {step}k"
        if self.decode_segments is not None:
            first, later = self.decode_segments
            bad = [self.pixel_frames(first + r) for r in range(1, self.chunk_min)]
            if bad:
                text += ", except " + ", ".join(f"{b} + {later * step // lstep}k" for b in bad)
        return text

    @property
    def causal_frames(self) -> bool:
        """Latent frame 0 decodes to one pixel frame and every later one to ``temporal_compression`` frames, so a
        prefix of the latent decodes to a prefix of the video (what chunked and windowed decodes rely on)."""
        return self.frame_grid is None

    @property
    def streamable(self) -> bool:
        """True when chunks can be decoded exactly by carrying the decoder's cache."""
        return self.cache is not None

    def short_last_segment(self, latent_frames: int) -> int | None:
        """Latent frames of decode()'s last segment when it holds fewer than ``chunk_min`` (None: the count is fine)."""
        if self.decode_segments is None or latent_frames <= self.decode_segments[0]:
            return None
        first, later = self.decode_segments
        last = (latent_frames - first) % later
        return last if 0 < last < self.chunk_min else None

    def latent_frames_at_least(self, n: int) -> int:
        """The smallest valid latent frame count >= ``n`` (``base + step*k`` of :attr:`frame_rule`, less the counts
        whose last decode() segment would be too short)."""
        base, step, _, _ = self.frame_rule
        k = base + step * max(0, -(-(n - base) // step))
        while self.short_last_segment(k) is not None:
            k += step
        return k

    def valid_frame_counts(self, up_to: int = 200) -> list[int]:
        """Pixel frame counts (<= up_to) this family decodes without padding: 1 + frame_step*k (or its grid), less
        those whose last decode() segment would be too short."""
        lbase, lstep, base, step = self.frame_rule
        return [f for k, f in enumerate(range(base, up_to + 1, step))
                if self.short_last_segment(lbase + k * lstep) is None]

    def _segment_rule_text(self) -> str:
        if self.decode_segments is None:
            return ""
        first, later = self.decode_segments
        return (f"; decode() splits the latent into segments of {first} then {later} latent frames and a last "
                f"segment must hold at least {self.chunk_min} ({self.chunk_reason})")

    def check_frames(self, frames: int, name: str = "frames") -> None:
        lbase, lstep, base, t = self.frame_rule
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < base or (frames - base) % t != 0 or \
                self.short_last_segment(lbase + (frames - base) // t * lstep) is not None:
            examples = ", ".join(str(f) for f in self.valid_frame_counts(base + 6 * t))
            raise ValueError(
                f"{name}={frames!r} cannot be decoded cleanly by {self.name}: "
                f"valid counts are {base} + {t}*k ({examples}, ...){self._segment_rule_text()}"
            )

    # ---- shapes -----------------------------------------------------------------
    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(channels, latent frames, latent height, latent width) for a pixel video."""
        self.check_frames(frames)
        s = self.spatial_compression
        for pname, v in (("height", height), ("width", width)):
            if not isinstance(v, int) or v <= 0 or v % s != 0:
                raise ValueError(f"{pname}={v!r} must be a positive multiple of {s} for {self.name}")
        lbase, lstep, pbase, pstep = self.frame_rule
        return (self.latent_channels, lbase + (frames - pbase) // pstep * lstep, height // s, width // s)

    def pixel_shape(self, latent_frames: int, latent_height: int, latent_width: int) -> tuple[int, int, int, int]:
        """(3, frames, height, width) that a latent of this size decodes to."""
        for pname, v in (("latent_frames", latent_frames), ("latent_height", latent_height), ("latent_width", latent_width)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"{pname}={v!r} must be a positive integer")
        s = self.spatial_compression
        return (3, self.pixel_frames(latent_frames), latent_height * s, latent_width * s)

    def check_latent_frames(self, latent_frames: int, name: str = "latent frames") -> None:
        """Latent frame counts must map back to a valid pixel count (odd counts for CogVideoX)."""
        base, step, pbase, pstep = self.frame_rule
        if latent_frames < base or (latent_frames - base) % step != 0:
            raise ValueError(
                f"{name}={latent_frames} cannot be decoded cleanly by {self.name}: valid latent frame counts "
                f"are {base} + {step}*k (pixel frames {pbase} + {pstep}*k)"
            )
        last = self.short_last_segment(latent_frames)
        if last is not None:
            raise ValueError(
                f"{name}={latent_frames} cannot be decoded cleanly by {self.name}: its decode() would end on a "
                f"segment of {last} latent frame(s){self._segment_rule_text()}; valid nearby: "
                f"{self.latent_frames_at_least(latent_frames)}"
            )

    def pixel_frames(self, latent_frames: int) -> int:
        if self.frame_grid is not None:
            base, step, pbase, pstep = self.frame_grid
            self.check_latent_frames(latent_frames)
            return pbase + (latent_frames - base) // step * pstep
        return (latent_frames - 1) * self.temporal_compression + 1

    def latent_to_pixel_frames(self, start: int, stop: int) -> tuple[int, int]:
        """Pixel frame range [a, b) produced by latent frames [start, stop) of a causal decode.

        Latent frame 0 yields pixel frame 0 alone; latent frame i >= 1 yields the
        temporal_compression frames that follow.
        """
        t = self.temporal_compression
        a = 0 if start == 0 else (start - 1) * t + 1
        b = 0 if stop == 0 else (stop - 1) * t + 1
        return a, b
