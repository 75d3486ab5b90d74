"""A stream for every family, and the rule-derived sizes the streaming pages use.

A pipeline that decodes chunk by chunk needs one call shape, ``stream.step(z) -> pixel frames``. A family whose decoder
carries a temporal cache streams with it (:func:`vaestudy.decode.streams.open_stream`; exact where
``VAEFamily.streams_exactly``). A family without one streams with overlapping windows (:class:`WindowStream`): each
step decodes the chunk behind a few latent frames of context as an independent clip and keeps only the chunk's own
frames: inexact, and the context is decoded again at every step. Families on a fixed frame grid (or with per-frame
latents) window on their grid: every window is a valid clip length of the family.
"""

from __future__ import annotations

import torch

from vaestudy.decode.common import pixel_size_at_least, plain_decode
from vaestudy.decode.streams import (  # the stream plan's rules live beside the cache streams; re-exported here
    check_stream_chunk,
    first_chunk,
    open_stream,
    stream_chunk,
    stream_plan,  # noqa: F401 (re-exported)
    window_context,
)
from vaestudy.registry.families import family_of
from vaestudy.registry.family import VAEFamily
from vaestudy.training.heldout import encode_mean


def stream_kind(family: VAEFamily) -> str:
    """``"cache"`` when the family streams with its decoder's cache, ``"windows"`` otherwise."""
    return "cache" if family.streamable else "windows"


def stream_is_exact(family: VAEFamily) -> bool:
    """The family's stream performs the arithmetic of its one-pass decode (a cache stream where the registry says
    so; overlapping windows never do)."""
    return family.streamable and family.streams_exactly


def stream_words(family: VAEFamily) -> str:
    """How the family streams, in words for a page (from the registry's rules)."""
    if family.streamable:
        exact = "exact by construction" if family.streams_exactly else "inexact: " + (
            family.stream_caveat or "a norm pools statistics over the frames of each chunk")
        return f"the decoder's own cache (`{family.cache}`), carried from step to step ({exact})"
    grid = "" if family.causal_frames else f", every window a valid clip of the {family.frame_rule_text} frame rule"
    return (f"overlapping windows: {window_context(family)} latent frame(s) of context decoded again in front of each "
            f"chunk and dropped{grid} (no cache: inexact)")


def frames_at_least(family: VAEFamily, frames: int, *, steps: int = 2, chunk: int | None = None) -> int:
    """The smallest valid pixel frame count >= ``frames`` whose latent streams in at least ``steps`` steps of
    ``chunk`` latent frames (default :func:`stream_chunk`)."""
    if not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames={frames!r} must be an integer >= 1")
    chunk = stream_chunk(family) if chunk is None else chunk
    need = first_chunk(family, chunk) + (steps - 1) * chunk
    latent = family.latent_frames_at_least(need)
    while family.pixel_frames(latent) < frames:
        latent = family.latent_frames_at_least(latent + 1)
    return family.pixel_frames(latent)


def size_at_least(family: VAEFamily, pixels: int, *, latent_min: int = 1) -> int:
    """The smallest multiple of the spatial compression >= ``pixels`` that holds >= ``latent_min`` latent pixels."""
    s = family.spatial_compression
    return s * max(latent_min, -(-pixels // s))


def stream_video_size(vae, frames: int, pixels: int, *, steps: int = 2) -> tuple[int, tuple[int, int]]:
    """(pixel frames, (height, width) px) of a square clip of at least ``frames`` x ``pixels`` x ``pixels`` that the
    model encodes, streams in at least ``steps`` steps (:func:`frames_at_least`) and decodes with its own decode()
    (a tiles-only decode() needs its tile grid: :func:`vaestudy.decode.common.pixel_size_at_least`)."""
    fam = family_of(vae)
    s = fam.spatial_compression
    latent_frames = fam.latent_shape(frames_at_least(fam, frames, steps=steps), s, s)[1]
    return pixel_size_at_least(vae, latent_frames, size_at_least(fam, pixels) // s)


class WindowStream:
    """Stream a family without a cache: each step decodes [context, chunk] as one independent clip (the family's
    plain decode) and returns only the chunk's own pixel frames (:func:`window_context` latent frames of context;
    inexact). The first step must be a valid clip; later steps follow :func:`check_stream_chunk`."""

    def __init__(self, vae, context: int | None = None):
        self.vae = vae
        self.family = family_of(vae)
        self.context = window_context(self.family) if context is None else context
        if not isinstance(self.context, int) or self.context < 0:
            raise ValueError(f"context={self.context!r} must be an integer >= 0 latent frames")
        self.tail: torch.Tensor | None = None  # the last latent frames seen, the next window's context
        self.seen = 0  # latent frames streamed so far

    def step(self, z: torch.Tensor, ahead: torch.Tensor | None = None) -> torch.Tensor:
        fam, n = self.family, int(z.shape[2])
        if self.seen:
            check_stream_chunk(fam, n, "latent frames per step")
        window = z if self.tail is None or not self.context else torch.cat([self.tail, z], dim=2)
        fam.check_latent_frames(int(window.shape[2]), name=f"window length (context {self.context} + step {n})")
        out = plain_decode(self.vae, window)
        new = fam.pixel_frames(self.seen + n) - (fam.pixel_frames(self.seen) if self.seen else 0)
        self.seen += n
        self.tail = window[:, :, -self.context:] if self.context else None
        return out[:, :, -new:]


def open_pipeline_stream(vae):
    """A fresh stream for any family: the decoder's cache where it has one, else :class:`WindowStream`."""
    return open_stream(vae) if family_of(vae).streamable else WindowStream(vae)


@torch.no_grad()
def encode_clip(vae, video: torch.Tensor) -> torch.Tensor:
    """Posterior-mean latent (batch, C, t, h, w) of a (3, T, H, W) or (batch, 3, T, H, W) video in [-1, 1] on the
    model's device, under the class's own conventions (:func:`vaestudy.training.heldout.encode_mean`)."""
    if video.ndim == 4:
        video = video[None]
    p = next(vae.parameters())
    video = video.to(p)
    family_of(vae).check_frames(int(video.shape[2]), "video frames")
    return encode_mean(vae, video)


def context_frames(family: VAEFamily) -> int:
    """Pixel frames a pipeline re-encodes as context: the shortest valid clip of more than one frame (some causal
    encoders cannot take a single frame: their temporal pooling needs a few)."""
    return next(n for n in family.valid_frame_counts(family.frame_rule[2] + 4 * family.frame_rule[3]) if n > 1)


def encodable_frames(family: VAEFamily, frames: torch.Tensor) -> torch.Tensor:
    """The last pixel frame of ``frames`` held for :func:`context_frames` frames: the clip a pipeline re-encodes."""
    return frames[:, :, -1:].expand(-1, -1, context_frames(family), -1, -1).contiguous()
