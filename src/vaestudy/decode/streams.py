"""Causal temporal caches driven from outside the diffusers classes.

A *stream* decodes a latent a few frames at a time and keeps the decoder's cached
features between calls, so chunk after chunk reproduces the one-pass decode:

* Wan 2.1: ``decoder(x, feat_cache=cache, feat_idx=[0], first_chunk=...)`` with one cache slot
  per ``WanCausalConv3d``; the very first call must hold exactly one latent frame.
* CogVideoX: ``decoder(z, conv_cache=cache)`` returns ``(frames, new_cache)``; the first chunk
  must hold an odd number of latent frames and every later chunk an even number, because its
  temporal upsampler treats an odd chunk as the start of a video.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from vaestudy.models import VAEFamily, family_of


class WanStream:
    """Stream a Wan latent through its decoder, carrying ``feat_cache``."""

    def __init__(self, vae, clamp: bool = True):
        from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d

        self.vae = vae
        self.clamp = clamp
        self.cache = [None] * sum(isinstance(m, WanCausalConv3d) for m in vae.decoder.modules())
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


class CogVideoXStream:
    """Stream a CogVideoX latent through its decoder, carrying ``conv_cache``."""

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
        return WanStream(vae, clamp=clamp)
    if family.cache == "conv_cache":
        return CogVideoXStream(vae)
    raise ValueError(
        f"model {family.name} exposes no temporal cache to stream with; use mode='window' "
        f"(overlapping windows, inexact) or a streamable family ({stream_families()})"
    )


def stream_families() -> str:
    from vaestudy.models import FAMILIES

    return ", ".join(f.name for f in FAMILIES.values() if f.cache)


def chunk_plan(family: VAEFamily, latent_frames: int, chunk: int) -> list[tuple[int, int]]:
    """Latent frame ranges [a, b) of a streamed decode with ``chunk`` frames per step.

    The remainder goes to the first chunk (as CogVideoX's own decode does), so every
    later chunk holds exactly ``chunk`` frames.
    """
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        raise ValueError(f"chunk={chunk!r} must be an integer >= 1 (latent frames per step)")
    if family.cache == "conv_cache" and chunk % 2:
        raise ValueError(
            f"chunk={chunk} is invalid for {family.name}: chunks must hold an even number of latent frames "
            "(its temporal upsampler treats an odd chunk as the start of a new video)"
        )
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
