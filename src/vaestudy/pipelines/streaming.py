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
from vaestudy.decode.streams import chunk_plan, open_stream
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


def window_context(family: VAEFamily) -> int:
    """Latent frames of context a window carries in front of each new chunk, the fewest that keep every window a
    valid clip length: the family's ``window_overlap`` for causal frame counts, on a fixed grid the shortest valid
    clip longer than one latent step minus that step."""
    if family.causal_frames:
        return family.window_overlap
    step = family.frame_rule[1]
    return family.latent_frames_at_least(step + 1) - step


# On a fixed frame grid a step adds at least this many pixel frames (the 4 of a causal 4x family's one-latent-frame
# chunk), so a per-frame family's chunk boundaries have frames between them to compare with.
MIN_STEP_FRAMES = 4


def stream_chunk(family: VAEFamily) -> int:
    """Latent frames per streamed step: the family's smallest valid chunk (``default_chunk``), or on a fixed frame
    grid the fewest grid steps that add at least :data:`MIN_STEP_FRAMES` pixel frames."""
    if family.causal_frames:
        return family.default_chunk
    _, step, _, pstep = family.frame_rule
    return step * -(-MIN_STEP_FRAMES // pstep)


def check_stream_chunk(family: VAEFamily, chunk: int, name: str = "chunk") -> None:
    """ValueError naming ``name`` unless ``chunk`` latent frames is a valid step of the family's stream."""
    if family.causal_frames:
        family.check_chunk(chunk, name)
        return
    step = family.frame_rule[1]
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1 or chunk % step:
        raise ValueError(f"{name}={chunk!r} is invalid for {family.name}: on its {family.frame_rule_text} frame grid a "
                         f"step must add a multiple of {step} latent frames (valid: {step}, {2 * step}, ...)")


def first_chunk(family: VAEFamily, chunk: int) -> int:
    """Latent frames of a stream's first step when every later step holds ``chunk``: the shortest valid latent
    length >= ``chunk``, so every prefix of the stream is a valid clip."""
    check_stream_chunk(family, chunk)
    return family.latent_frames_at_least(chunk)


def stream_plan(family: VAEFamily, latent_frames: int, chunk: int | None = None) -> list[tuple[int, int]]:
    """Latent frame ranges [a, b) of a streamed decode: the family's chunk plan, or on a fixed frame grid a first
    valid clip and then steps of ``chunk`` latent frames (a multiple of the grid's latent step)."""
    chunk = stream_chunk(family) if chunk is None else chunk
    family.check_latent_frames(latent_frames)
    if family.causal_frames:
        return chunk_plan(family, latent_frames, chunk)
    check_stream_chunk(family, chunk)
    base = family.frame_rule[0]
    first = base + (latent_frames - base) % chunk
    plan = [(0, first)]
    while plan[-1][1] < latent_frames:
        plan.append((plan[-1][1], plan[-1][1] + chunk))
    return plan


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
