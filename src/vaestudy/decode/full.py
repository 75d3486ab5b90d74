"""The reference: the family's own ``decode()``, and a one-pass decoder call for comparison.

What ``decode()`` really does differs per family (see ``VAEFamily.decode_notes``): Wan already
streams one latent frame at a time with its cache, CogVideoX runs batches of 2 latent frames,
HunyuanVideo tiles in time, LTX-Video and Mochi run one pass.
"""

from __future__ import annotations

import torch

from vaestudy.decode.common import (
    DecodeResult,
    collect,
    own_decode,
    timed_single,
    validate_latent,
)
from vaestudy.decode.streams import open_stream


def decode_full(vae, z: torch.Tensor) -> DecodeResult:
    """Decode with the family's own ``decode()`` (diffusers spatial tiling off)."""
    validate_latent(vae, z)
    return collect("full", timed_single(vae, own_decode, z), exact=True, params={}, vae=vae)


def _single_pass(vae, z):
    with torch.no_grad():
        return open_stream(vae).step(z)


def decode_single_pass(vae, z: torch.Tensor) -> DecodeResult:
    """All latent frames in one decoder call through a fresh cache.

    For CogVideoX this is the decode whose GroupNorm statistics span the whole video, the
    reference its 2-frame batches are measured against.  For Wan it equals ``decode()``.
    """
    family = validate_latent(vae, z)
    return collect("single-pass", timed_single(vae, _single_pass, z), exact=family.norm == "rms",
                   params={}, vae=vae)
