"""Causal temporal caches driven from outside the diffusers classes.

A *stream* decodes a latent a few frames at a time and keeps the decoder's cached
features between calls, so chunk after chunk reproduces the one-pass decode:

* ``feat_cache`` families: ``decoder(x, feat_cache=cache, feat_idx=[0], first_chunk=...)`` with one
  cache slot per causal convolution (the registry's ``cache_module``); the very first call must hold
  exactly one latent frame.
* ``conv_cache`` families: ``decoder(z, conv_cache=cache)`` returns ``(frames, new_cache)``; chunk
  sizes follow the registry's ``chunk_multiple`` (the remainder goes to the first chunk).

Streams are chosen by the family's cache kind (:data:`STREAMS`), never by its name.
"""

from __future__ import annotations

import contextlib
import importlib

import torch
import torch.nn.functional as F

from vaestudy.registry.families import FAMILIES, family_of
from vaestudy.registry.family import VAEFamily


def _cache_module_class(family: VAEFamily) -> type:
    """The diffusers class named by the registry's ``cache_module`` ("module:Class" under diffusers' autoencoders)."""
    module, _, name = family.cache_module.partition(":")
    return getattr(importlib.import_module(f"diffusers.models.autoencoders.{module}"), name)


class FeatCacheStream:
    """Stream a latent through a decoder that carries ``feat_cache`` (one slot per causal convolution)."""

    def __init__(self, vae, clamp: bool = True):
        conv = _cache_module_class(family_of(vae))
        self.vae = vae
        self.clamp = clamp
        self.cache = [None] * sum(isinstance(m, conv) for m in vae.decoder.modules())
        self.started = False

    def step(self, z: torch.Tensor) -> torch.Tensor:
        x = self.vae.post_quant_conv(z)  # kernel 1 in time: needs no cache
        outs = []
        if not self.started:
            outs.append(self.vae.decoder(x[:, :, :1], feat_cache=self.cache, feat_idx=[0], first_chunk=True))
            x = x[:, :, 1:]
            self.started = True
        if x.shape[2]:
            outs.append(self.vae.decoder(x, feat_cache=self.cache, feat_idx=[0]))
        out = torch.cat(outs, dim=2)
        return out.clamp(-1.0, 1.0) if self.clamp else out


class ConvCacheStream:
    """Stream a latent through a decoder that returns and takes back its ``conv_cache``."""

    def __init__(self, vae):
        self.vae = vae
        self.cache = None

    def step(self, z: torch.Tensor) -> torch.Tensor:
        if self.vae.post_quant_conv is not None:
            z = self.vae.post_quant_conv(z)
        out, self.cache = self.vae.decoder(z, conv_cache=self.cache)
        return out


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


STREAMS = {"feat_cache": FeatCacheStream, "conv_cache": ConvCacheStream}  # cache kind -> stream class


def stream_families() -> str:

    return ", ".join(f.name for f in FAMILIES.values() if f.cache)


def chunk_plan(family: VAEFamily, latent_frames: int, chunk: int) -> list[tuple[int, int]]:
    """Latent frame ranges [a, b) of a streamed decode with ``chunk`` frames per step.

    The remainder goes to the first chunk (as the 2-frame batching decodes do), so every
    later chunk holds exactly ``chunk`` frames.
    """
    family.check_chunk(chunk)
    first = 1 + (latent_frames - 1) % chunk
    plan = [(0, first)]
    while plan[-1][1] < latent_frames:
        a = plan[-1][1]
        plan.append((a, a + chunk))
    return plan


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
