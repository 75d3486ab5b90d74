"""Causal temporal caches driven from outside the diffusers classes.

A *stream* decodes a latent a few frames at a time and keeps the decoder's cached
features between calls, so chunk after chunk reproduces the one-pass decode:

* ``feat_cache`` families: ``decoder(x, feat_cache=cache, feat_idx=[0], first_chunk=...)`` with one
  cache slot per causal convolution (the registry's ``cache_module``); the very first call must hold
  exactly one latent frame.
* ``conv_cache`` families: ``decoder(z, conv_cache=cache)`` returns ``(frames, new_cache)``; chunk
  sizes follow the registry's ``chunk_multiple`` (the remainder goes to the first chunk).
* ``cache_dict`` families: ``decoder(z, cache_dict)`` with the nested dict the class builds, updated in place;
  every call must hold ``chunk_min`` latent frames.
* ``prev_features`` and ``causal_cache`` families keep the cache in their modules' attributes; a stream swaps
  its own copy in for each step and leaves the modules cleared. A ``causal_cache`` decoder reads one latent
  frame ahead, so ``step`` takes the next latent frame as ``ahead`` (every stream accepts it; the others
  ignore it).

Streams are chosen by the family's cache kind (:data:`STREAMS`), never by its name.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from typing import ClassVar

import torch
import torch.nn.functional as F

from vaestudy.registry.families import FAMILIES, family_of
from vaestudy.registry.family import VAEFamily


def _cache_module_class(family: VAEFamily) -> type:
    """The diffusers class named by the registry's ``cache_module`` ("module:Class" under diffusers' autoencoders)."""
    module, _, name = family.cache_module.partition(":")
    return getattr(importlib.import_module(f"diffusers.models.autoencoders.{module}"), name)


class FeatCacheStream:
    """Stream a latent through a decoder that carries ``feat_cache`` (one slot per causal convolution).

    A patchified decoder (``config.patch_size``) returns pixel patches as channels; they are unpatchified with
    the class module's own ``unpatchify``, as its ``_decode`` does.
    """

    def __init__(self, vae, clamp: bool = True):
        conv = _cache_module_class(family_of(vae))
        self.vae = vae
        self.clamp = clamp
        self.cache = [None] * sum(isinstance(m, conv) for m in vae.decoder.modules())
        self.started = False
        self.patch_size = getattr(vae.config, "patch_size", None)
        self.unpatchify = getattr(inspect.getmodule(type(vae)), "unpatchify", None) if self.patch_size else None

    def step(self, z: torch.Tensor, ahead: torch.Tensor | None = None) -> torch.Tensor:
        x = self.vae.post_quant_conv(z)  # kernel 1 in time: needs no cache
        outs = []
        if not self.started:
            outs.append(self.vae.decoder(x[:, :, :1], feat_cache=self.cache, feat_idx=[0], first_chunk=True))
            x = x[:, :, 1:]
            self.started = True
        if x.shape[2]:
            outs.append(self.vae.decoder(x, feat_cache=self.cache, feat_idx=[0]))
        out = torch.cat(outs, dim=2)
        if self.unpatchify is not None:
            out = self.unpatchify(out, patch_size=self.patch_size)
        return out.clamp(-1.0, 1.0) if self.clamp else out


class ConvCacheStream:
    """Stream a latent through a decoder that returns and takes back its ``conv_cache``."""

    def __init__(self, vae):
        self.vae = vae
        self.cache = None

    def step(self, z: torch.Tensor, ahead: torch.Tensor | None = None) -> torch.Tensor:
        if self.vae.post_quant_conv is not None:
            z = self.vae.post_quant_conv(z)
        out, self.cache = self.vae.decoder(z, conv_cache=self.cache)
        return out


class CacheDictStream:
    """Stream a latent through a decoder called as ``decoder(z, cache_dict)``, the nested dict of padding frames
    and norm flags that the class's ``_make_decoder_cache`` builds and every call updates in place."""

    def __init__(self, vae):
        self.vae = vae
        self.cache = vae._make_decoder_cache()

    def step(self, z: torch.Tensor, ahead: torch.Tensor | None = None) -> torch.Tensor:
        return self.vae.decoder(z, self.cache)


class _ModuleStateStream:
    """A stream over a decoder that keeps its cache as attributes of its modules (:attr:`STATE`).

    Each stream keeps its own copy of that state and installs it only for the length of a step, leaving the
    modules cleared (the values the class builds them with) before and after: so several streams of one model
    (one per spatial tile) and the family's own ``decode()`` never see each other's cache.
    """

    STATE: ClassVar[dict] = {}  # attribute -> its cleared value

    def __init__(self, vae):
        self.vae = vae
        self.modules = [m for m in vae.decoder.modules() if any(hasattr(m, a) for a in self.STATE)]
        self.fresh = [{a: v for a, v in self.STATE.items() if hasattr(m, a)} for m in self.modules]
        self.saved = None  # this stream's state between steps (None: not started)

    @contextlib.contextmanager
    def _installed(self):
        for m, st in zip(self.modules, self.saved or self.fresh):
            for a, v in st.items():
                setattr(m, a, v)
        try:
            yield
        finally:
            self.saved = [{a: getattr(m, a) for a in st} for m, st in zip(self.modules, self.fresh)]
            for m, st in zip(self.modules, self.fresh):
                for a, v in st.items():
                    setattr(m, a, v)

    @property
    def started(self) -> bool:
        return self.saved is not None


class PrevFeaturesStream(_ModuleStateStream):
    """Stream through a decoder whose causal convs and temporal upsamplers keep ``prev_features`` between calls.

    The first call must hold exactly one latent frame (the upsamplers skip temporal upsampling on their first
    call, as the class's own decode() does for its first frame); a step splits it off itself.
    """

    STATE: ClassVar[dict] = {"prev_features": None}

    def step(self, z: torch.Tensor, ahead: torch.Tensor | None = None) -> torch.Tensor:
        x = self.vae.post_quant_conv(z)  # kernel 1: needs no cache
        outs = []
        with self._installed():
            if not self.started:
                outs.append(self.vae.decoder(x[:, :, :1]))
                x = x[:, :, 1:]
            if x.shape[2]:
                outs.append(self.vae.decoder(x))
        return torch.cat(outs, dim=2)


class CausalCacheStream(_ModuleStateStream):
    """Stream through a decoder whose causal modules keep ``causal_cache`` (with ``is_first_chunk`` and
    ``cache_offset``), using the protocol of the class's own ``tiled_decode``.

    Its temporal upsamplers interpolate trilinearly, so an output frame reads one latent frame ahead: a step is
    given the next latent frame (``ahead``), decodes it too, drops its pixel frames and keeps it out of every
    cache (``cache_offset``: its frames at each module's temporal resolution). Without ``ahead`` (the last step)
    the chunk ends like the video does. The first step drops the leading frames decode() drops.
    """

    STATE: ClassVar[dict] = {"causal_cache": None, "is_first_chunk": True, "cache_offset": 0}

    def __init__(self, vae):
        if not getattr(vae, "is_causal", True):
            raise ValueError(f"{type(vae).__name__} built with is_causal=False keeps no causal_cache to stream with; "
                             "valid: a causal config (is_causal=True, the class default)")
        super().__init__(vae)
        self.ratio = int(vae.temporal_compression_ratio)
        # cache_offset per module for one latent frame ahead, as the class's tiled_decode sets it: 1 at the latent
        # rate, doubled by each temporal upsampler for the modules after it
        dec = vae.decoder
        offsets = {id(m): 1 for m in dec.modules()}
        for level in sorted(dec.tempo_us, reverse=True):  # the decoder runs its levels high to low
            up = dec.up_temporal[level].upsample
            after = [up] + [dec.up_temporal[lv] for lv in range(level)] + [dec.norm_out, dec.conv_out]
            for mod in after:
                for m in mod.modules():
                    offsets[id(m)] = 2 * up.num_temp_upsample
        self.offsets = [offsets[id(m)] for m in self.modules]

    def step(self, z: torch.Tensor, ahead: torch.Tensor | None = None) -> torch.Tensor:
        if not self.started and ahead is not None and z.shape[2] > 1:
            # as the class's tiled_decode does: the first call holds latent frame 0 alone, reading frame 1 ahead
            head = self._call(z[:, :, :1], z[:, :, 1:2])
            return torch.cat([head, self._call(z[:, :, 1:], ahead)], dim=2)
        return self._call(z, ahead)

    def _call(self, z: torch.Tensor, ahead: torch.Tensor | None) -> torch.Tensor:
        first = not self.started
        with self._installed():
            for m, off in zip(self.modules, self.offsets):
                if hasattr(m, "is_first_chunk"):
                    m.is_first_chunk = first
                if hasattr(m, "cache_offset"):
                    m.cache_offset = off if ahead is not None else 0
            out = self.vae.decoder(z if ahead is None else torch.cat([z, ahead[:, :, :1]], dim=2))
        if ahead is not None:
            out = out[:, :, :-self.ratio]
        return out[:, :, self.ratio - 1:] if first else out


def open_stream(vae, clamp: bool = True):
    """A fresh stream (empty cache) for a streamable family; ValueError otherwise."""
    family = family_of(vae)
    if family.cache == "feat_cache":
        return FeatCacheStream(vae, clamp=clamp)
    if family.cache in STREAMS:
        return STREAMS[family.cache](vae)
    raise ValueError(
        f"model {family.name} exposes no temporal cache to stream with; use mode='window' "
        f"(overlapping windows, inexact) or a streamable family ({stream_families()})"
    )


# cache kind (the registry's ``cache``, named as diffusers names it) -> stream class
STREAMS = {"feat_cache": FeatCacheStream, "conv_cache": ConvCacheStream, "cache_dict": CacheDictStream,
           "prev_features": PrevFeaturesStream, "causal_cache": CausalCacheStream}


def stream_families() -> str:

    return ", ".join(f.name for f in FAMILIES.values() if f.cache)


def chunk_plan(family: VAEFamily, latent_frames: int, chunk: int) -> list[tuple[int, int]]:
    """Latent frame ranges [a, b) of a streamed decode with ``chunk`` frames per step.

    The remainder goes to the first chunk (as the 2-frame batching decodes do), so every
    later chunk holds exactly ``chunk`` frames; a first chunk shorter than the family's ``chunk_min``
    takes the next chunk in too.
    """
    family.check_chunk(chunk)
    first = 1 + (latent_frames - 1) % chunk
    if first < family.chunk_min and first < latent_frames:
        first += chunk
    plan = [(0, first)]
    while plan[-1][1] < latent_frames:
        a = plan[-1][1]
        plan.append((a, a + chunk))
    return plan


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


def check_windows(family: VAEFamily, latent_frames: int, chunk: int, overlap: int) -> None:
    """ValueError before any decode unless every window of a windowed stream (``overlap`` latent frames of context in
    front of each later step of :func:`stream_plan`) is a clip length the family decodes."""
    for a, b in stream_plan(family, latent_frames, chunk)[1:]:
        family.check_latent_frames(b - max(a - overlap, 0), name=f"window length (chunk={chunk} + overlap={overlap})")


def latent_frames_streamed(family: VAEFamily, at_least: int, steps: int = 2) -> int:
    """The smallest valid latent frame count >= ``at_least`` that :func:`stream_plan` splits into at least ``steps``
    steps of the family's default chunk (a stream of one step is the family's own decode, trivially exact)."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps={steps!r} must be an integer >= 1")
    n = family.latent_frames_at_least(at_least)
    while len(stream_plan(family, n)) < steps:
        n = family.latent_frames_at_least(n + 1)
    return n


@contextlib.contextmanager
def framewise_groupnorm(vae):
    """Make every GroupNorm of the decoder normalise each frame on its own.

    GroupNorm over a (batch, C, T, H, W) tensor pools statistics across the T frames of
    whatever chunk it sees, so chunked and one-pass decodes differ.  Per-frame statistics
    remove that dependence (an experiment: the pretrained weights were trained without it).
    """
    patched = []

    def make_forward(gn):
        def forward(x):
            if x.ndim != 5:
                return F.group_norm(x, gn.num_groups, gn.weight, gn.bias, gn.eps)
            b, c, t, h, w = x.shape
            y = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
            y = F.group_norm(y, gn.num_groups, gn.weight, gn.bias, gn.eps)
            return y.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)

        return forward

    for m in vae.decoder.modules():
        if isinstance(m, torch.nn.GroupNorm):
            m.forward = make_forward(m)
            patched.append(m)
    try:
        yield len(patched)
    finally:
        for m in patched:
            del m.forward  # falls back to the class method
