"""What every decode strategy shares: input validation, timing, results, the family's own decode."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch

from vaestudy.clock import Clock, now
from vaestudy.devices import same_device
from vaestudy.registry.families import FAMILIES, config_latent_channels, family_of
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
    """Latent channels of a loaded VAE (``z_dim``, ``latent_channels`` or ``z_channels`` in its config)."""
    c = config_latent_channels(vae.config)
    if c is None:
        raise ValueError(f"{type(vae).__name__}'s config names no latent channel count (z_dim, latent_channels, "
                         "z_channels)")
    return c


def own_tile_grid(vae: torch.nn.Module) -> tuple[tuple[int, int], ...] | None:
    """(latent kernel, latent stride) per axis (frames, height, width) of a decode() that only works in 3-D tiles.

    Read from the model's ``kernel`` and ``stride`` (pixels) where its family's ``decode_tiling`` is "only"; None
    for every other family.
    """
    family = family_of(vae)
    if family.decode_tiling != "only":
        return None
    scale = (family.temporal_compression, family.spatial_compression, family.spatial_compression)
    return tuple((k // r, s // r) for k, s, r in zip(vae.kernel, vae.stride, scale))


def fit_own_tiles(vae: torch.nn.Module, latent_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The smallest (frames, height, width) at least ``latent_shape`` on the 3-D tile grid of a tiles-only decode()
    (see :func:`check_own_tiles`); ``latent_shape`` itself for every other family."""
    grid = own_tile_grid(vae)
    if grid is None:
        return tuple(latent_shape)
    return tuple(k + st * max(0, -(-(n - k) // st)) for n, (k, st) in zip(latent_shape, grid))


def latent_size_at_least(vae: torch.nn.Module, latent_frames: int, latent_side: int) -> tuple[int, int, int]:
    """The smallest latent (frames, height, width) of at least ``latent_frames`` x ``latent_side`` x ``latent_side``
    that the family decodes: its frame rule (:meth:`VAEFamily.latent_frames_at_least`), then the 3-D tile grid of a
    tiles-only decode() (:func:`fit_own_tiles`)."""
    for name, v in (("latent_frames", latent_frames), ("latent_side", latent_side)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name}={v!r} must be an integer >= 1")
    family = family_of(vae)
    t, h, w = fit_own_tiles(vae, (family.latent_frames_at_least(latent_frames), latent_side, latent_side))
    return family.latent_frames_at_least(t), h, w


def pixel_size_at_least(vae: torch.nn.Module, latent_frames: int, latent_side: int) -> tuple[int, tuple[int, int]]:
    """(pixel frames, (height, width) px) of the video that :func:`latent_size_at_least` decodes to: the size a
    notebook asks :func:`random_latent` for, valid for every family."""
    family = family_of(vae)
    t, h, w = latent_size_at_least(vae, latent_frames, latent_side)
    _, frames, height, width = family.pixel_shape(t, h, w)
    return frames, (height, width)


def check_own_tiles(vae: torch.nn.Module, latent_shape: tuple[int, int, int]) -> None:
    """ValueError unless a latent of (frames, height, width) lies on the 3-D tile grid of a tiles-only decode().

    Off the grid, such a decode() leaves the uncovered rows and frames at zero without a word.
    """
    grid = own_tile_grid(vae)
    if grid is None:
        return
    for axis, n, (k, st) in zip(("latent frames", "latent height", "latent width"), latent_shape, grid):
        if n < k or (n - k) % st:
            raise ValueError(
                f"{axis}={n} is off {family_of(vae).name}'s decode() tile grid: it decodes only {k} + {st}*k "
                f"(3-D tiles of {k}, stride {st}); other sizes leave rows or frames at zero")


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
    if family.per_frame_latents and z.shape[0] != 1:
        raise ValueError(f"latent batch={z.shape[0]} but {family.name} decodes one clip of per-frame latents at a "
                         "time; pass batch 1")
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
    if getattr(attns[0], "proj", None) is None:
        raise ValueError(f"{type(vae).__name__}'s decoder mid-block attention ({type(attns[0]).__name__}) is not "
                         "proj(attention(norm(x))) + x: it has no output projection `proj` to set")
    return attns[0]


def decoder_attention_classes(vae: torch.nn.Module) -> list[str]:
    """Class names of the attention modules in the model's decoder (every module whose class name says attention),
    in order of first appearance: what lets one decoded pixel depend on a whole frame or clip, beyond any overlap."""
    decoder = getattr(vae, "decoder", vae)
    names = [type(m).__name__ for m in decoder.modules()]
    return list(dict.fromkeys(n for n in names if "attention" in n.lower() or "attn" in n.lower()))


def clear_vae_cache(vae: torch.nn.Module) -> None:
    """Drop any temporal cache a diffusers VAE keeps between calls (``clear_cache`` or ``_clear_conv_cache``)."""
    if hasattr(vae, "clear_cache"):
        vae.clear_cache()
    if hasattr(vae, "_clear_conv_cache"):
        vae._clear_conv_cache()


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


def call_decode(vae: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """``vae.decode`` of a (batch, C, frames, h, w) latent under the class's own calling conventions, returned as a
    (batch, 3, frames, H, W) tensor.

    Conventions handled (the registry says which family has which): per-frame 2-D latents plus ``num_frames``
    (``per_frame_latents``), frames before channels in the output (``output_layout``), a bare tensor instead of a
    ``DecoderOutput``.
    """
    family = family_of(vae)
    if family.per_frame_latents:
        b, c, t, h, w = z.shape
        out = vae.decode(z.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w), num_frames=t)
    else:
        out = vae.decode(z)
    sample = out.sample if hasattr(out, "sample") else (out[0] if isinstance(out, tuple) else out)
    if family.per_frame_latents:
        sample = sample.reshape(b, t, *sample.shape[1:]).permute(0, 2, 1, 3, 4)
    elif family.output_layout == "btchw":
        sample = sample.permute(0, 2, 1, 3, 4)
    return sample


def own_decode(vae: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """The family's own ``decode()`` with its defaults: diffusers' spatial tiling off unless the family decodes tiled
    by default or only tiled (``decode_tiling``)."""
    tiling = family_of(vae).decode_tiling != "off"
    with torch.no_grad(), family_decode_settings(vae, spatial_tiling=tiling):
        return call_decode(vae, z)


def decoder_pass(vae: torch.nn.Module, z: torch.Tensor, *, grad: bool = False) -> torch.Tensor:
    """``post_quant_conv`` then ``decoder`` on the whole latent in one call, bypassing ``decode()``.

    For a class whose ``decode()`` has no untiled path this is the one-pass decode each of its own tiles gets; a
    2-D ``post_quant_conv`` runs frame by frame, as those classes do. ``grad``: keep the autograd graph (the
    receptive-field probe differentiates through it); by default no graph is built.
    """
    pq = getattr(vae, "post_quant_conv", None)
    with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
        if isinstance(pq, torch.nn.Conv2d):
            b = z.shape[0]
            z = pq(z.permute(0, 2, 1, 3, 4).flatten(0, 1)).unflatten(0, (b, -1)).permute(0, 2, 1, 3, 4)
        elif pq is not None:
            z = pq(z)
        return vae.decoder(z)


def untiled_decode(vae: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """The family's decode of z in one piece (no diffusers spatial tiling): ``decode()`` with tiling off, or the
    one-pass :func:`decoder_pass` for a family whose ``decode()`` has no untiled path."""
    if family_of(vae).decode_tiling == "only":
        clear_vae_cache(vae)
        return decoder_pass(vae, z)
    with torch.no_grad(), family_decode_settings(vae, spatial_tiling=False):
        return call_decode(vae, z)


def plain_decode(vae: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """``decode()`` of z as one independent clip: no spatial tiling and no temporal (framewise) tiling."""
    if family_of(vae).decode_tiling == "only":
        return untiled_decode(vae, z)
    with family_decode_settings(vae, spatial_tiling=False, framewise=False):
        return call_decode(vae, z)


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
    _, t, h, w = family.latent_shape(frames, *size)
    p = next(vae.parameters())
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, latent_channels(vae), t, h, w, generator=g).to(p)
