"""What every decode strategy shares: input validation, timing, results, the family's own decode."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import torch

from vaestudy.clock import Clock, now
from vaestudy.devices import same_device
from vaestudy.registry.families import FAMILIES, family_of
from vaestudy.registry.family import VAEFamily


@dataclass
class Chunk:
    """Pixel frames a streaming strategy hands out as soon as they are final."""

    frames: torch.Tensor  # (batch, 3, n, height, width)
    start: int  # index of the chunk's first pixel frame in the whole video
    seconds: float  # compute time of this chunk, device-synchronised (s)
    elapsed: float  # time since the decode started when the chunk was ready (s)


@dataclass
class DecodeResult:
    """A whole decoded video plus how it was produced."""

    strategy: str
    video: torch.Tensor  # (batch, 3, frames, height, width), the family's output range ([-1, 1] nominal)
    chunk_seconds: list[float]
    chunk_frames: list[int]
    first_frame_seconds: float  # time until the first pixel frame was available (s)
    total_seconds: float
    exact: bool  # True when the strategy is mathematically the family's full decode
    params: dict = field(default_factory=dict)
    weights: str = "unknown"
    extra: dict = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return self.video.shape[2]


def model_device_dtype(vae: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(vae.parameters())
    return p.device, p.dtype


def latent_channels(vae: torch.nn.Module) -> int:
    cfg = vae.config
    return int(getattr(cfg, "z_dim", None) or cfg.latent_channels)


def validate_latent(vae: torch.nn.Module, z: torch.Tensor) -> VAEFamily:
    """Check a latent against the model before any decode; returns the model's family."""
    family = family_of(vae)
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"latent must be a torch.Tensor, got {type(z).__name__}")
    if z.ndim != 5:
        raise ValueError(
            f"latent must be 5-D (batch, channels, frames, height, width); got shape {tuple(z.shape)}"
        )
    c = latent_channels(vae)
    if z.shape[1] != c:
        raise ValueError(f"latent channels={z.shape[1]} but {family.name} expects {c} (shape {tuple(z.shape)})")
    family.check_latent_frames(int(z.shape[2]))
    device, dtype = model_device_dtype(vae)
    if z.dtype != dtype or not same_device(z.device, device):
        raise ValueError(
            f"latent is {z.dtype} on {z.device} but the model is {dtype} on {device}; "
            f"use z.to(device={str(device)!r}, dtype={dtype})"
        )
    if not torch.isfinite(z).all():
        bad = int((~torch.isfinite(z)).sum())
        raise ValueError(f"latent holds {bad} NaN/Inf values; a decode would propagate them everywhere")
    return family


def decoder_mid_attention(vae: torch.nn.Module) -> torch.nn.Module:
    """The decoder's mid-block attention (the registry's ``attention_block``: ``proj(attention(norm(x))) + x``),
    global per frame. A ValueError for a model without one (some decoders' mid-blocks are convolutions only)."""
    attns = getattr(getattr(getattr(vae, "decoder", None), "mid_block", None), "attentions", None)
    if not attns or attns[0] is None:
        having = ", ".join(f.diffusers_class for f in FAMILIES.values() if f.attention_block)
        raise ValueError(f"{type(vae).__name__} has no decoder.mid_block.attentions[0]: decoders with a mid-block "
                         f"attention: {having}")
    return attns[0]


def clear_vae_cache(vae: torch.nn.Module) -> None:
    """Drop any temporal cache a diffusers VAE keeps between calls."""
    if hasattr(vae, "clear_cache"):
        vae.clear_cache()


@contextlib.contextmanager
def family_decode_settings(vae: torch.nn.Module, *, spatial_tiling: bool = False, framewise: bool | None = None):
    """Temporarily set diffusers' tiling switches, restoring them (and clearing caches) after."""
    saved = {k: getattr(vae, k) for k in ("use_tiling", "use_framewise_decoding", "use_slicing") if hasattr(vae, k)}
    try:
        if hasattr(vae, "use_tiling"):
            vae.use_tiling = spatial_tiling
        if framewise is not None and hasattr(vae, "use_framewise_decoding"):
            vae.use_framewise_decoding = framewise
        clear_vae_cache(vae)
        yield
    finally:
        clear_vae_cache(vae)
        for k, v in saved.items():
            setattr(vae, k, v)


def own_decode(vae: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """The family's own ``decode()`` with diffusers' spatial tiling off and its other defaults kept."""
    with torch.no_grad(), family_decode_settings(vae, spatial_tiling=False):
        return vae.decode(z).sample


def plain_decode(vae: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """``decode()`` of z as one independent clip: no spatial tiling and no temporal (framewise) tiling."""
    with family_decode_settings(vae, spatial_tiling=False, framewise=False):
        return vae.decode(z).sample


def collect(strategy: str, chunks: Iterable[Chunk], *, exact: bool, params: dict, vae, extra=None) -> DecodeResult:
    """Run a chunk iterator to the end and assemble a :class:`DecodeResult`."""
    t0 = now()
    parts, secs, nframes = [], [], []
    first = math.nan
    for ch in chunks:
        if math.isnan(first):
            first = ch.elapsed
        parts.append(ch.frames)
        secs.append(ch.seconds)
        nframes.append(ch.frames.shape[2])
    total = now() - t0
    return DecodeResult(
        strategy=strategy,
        video=torch.cat(parts, dim=2),
        chunk_seconds=secs,
        chunk_frames=nframes,
        first_frame_seconds=first,
        total_seconds=total,
        exact=exact,
        params=params,
        weights=getattr(vae, "weights_source", "unknown"),
        extra=extra or {},
    )


def timed_single(vae, fn, z) -> Iterator[Chunk]:
    """A one-chunk stream: the whole video becomes available at once."""
    device, _ = model_device_dtype(vae)
    sw = Clock(device)
    out = fn(vae, z)
    dt, el = sw.lap()
    yield Chunk(out, 0, dt, el)


def random_latent(vae, frames: int, size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """A seeded N(0, 1) latent for a pixel video of ``frames`` x ``size`` (validated by the family)."""
    family = family_of(vae)
    c, t, h, w = family.latent_shape(frames, *size)
    p = next(vae.parameters())
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, latent_channels(vae), t, h, w, generator=g).to(p)
