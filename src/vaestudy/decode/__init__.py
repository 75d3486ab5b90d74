"""Decode strategies, one call shape: ``decode_<strategy>(vae, z, ...) -> DecodeResult``.

==================  =====================================================================
``full``            the family's own ``decode()`` (the reference)
``single-pass``     every latent frame in one decoder call (the GroupNorm families' reference)
``tiled``           our tile plan + pixel-space blend, each tile through the family's decode
``diffusers-tiled`` diffusers' ``enable_tiling`` path, for comparison
``chunked``         streaming with the causal cache (``mode='naive'``/``'window'`` for the rest)
``tiled+chunked``   every tile streamed through time with its own cache
==================  =====================================================================
"""

from vaestudy.decode.chunked import MODES, decode_chunked, iter_chunked
from vaestudy.decode.common import Chunk, DecodeResult, validate_latent
from vaestudy.decode.full import decode_full, decode_single_pass
from vaestudy.decode.streams import chunk_plan, framewise_groupnorm, open_stream
from vaestudy.decode.tiled import (
    BLENDS,
    TilePlan,
    blend_ramp,
    decode_diffusers_tiled,
    decode_tiled,
)
from vaestudy.decode.tiled_chunked import decode_tiled_chunked, iter_tiled_chunked

__all__ = [
    "BLENDS", "MODES", "Chunk", "DecodeResult", "TilePlan", "blend_ramp", "chunk_plan", "decode_chunked",
    "decode_diffusers_tiled", "decode_full", "decode_single_pass", "decode_tiled", "decode_tiled_chunked",
    "framewise_groupnorm", "iter_chunked", "iter_tiled_chunked", "open_stream", "validate_latent",
]
