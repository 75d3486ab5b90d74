"""The reference: the family's own ``decode()``, and a one-pass decoder call for comparison.

What ``decode()`` really does differs per family (see ``VAEFamily.decode_notes``): some already stream
one latent frame at a time with their cache, some run batches of 2 latent frames, some tile in time
(``VAEFamily.temporal_window``), the rest run one pass.
"""

from __future__ import annotations

import torch

from vaestudy.decode.common import (
    DecodeResult,
    check_own_tiles,
    collect,
    own_decode,
    timed_single,
    validate_latent,
)
from vaestudy.decode.streams import open_stream


def decode_full(vae, z: torch.Tensor) -> DecodeResult:
    """Decode with the family's own ``decode()`` (diffusers spatial tiling off unless the family ships with it on or
    has no untiled path; see the registry's ``decode_tiling``)."""
    validate_latent(vae, z)
    check_own_tiles(vae, tuple(z.shape[2:]))
    return collect("full", timed_single(vae, own_decode, z), exact=True, params={}, vae=vae)


def _single_pass(vae, z):
    with torch.no_grad():
        return open_stream(vae).step(z)


def decode_single_pass(vae, z: torch.Tensor) -> DecodeResult:
    """All latent frames in one decoder call through a fresh cache.

    For a GroupNorm family this is the decode whose statistics span the whole video, the reference its
    2-frame batches are measured against. For a per-pixel-norm family it equals ``decode()``.
    """
    family = validate_latent(vae, z)
    return collect("single-pass", timed_single(vae, _single_pass, z), exact=family.norm == "rms",
                   params={}, vae=vae)
