"""The registry: every family the study covers, and lookups by name or by loaded model."""

from __future__ import annotations

from collections.abc import Callable

import torch

from vaestudy.registry.family import VAEFamily

FAMILIES: dict[str, VAEFamily] = {
    "wan2.1": VAEFamily(
        name="wan2.1",
        diffusers_class="AutoencoderKLWan",
        repo_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        subfolder="vae",
        spatial_compression=8,
        temporal_compression=4,
        latent_channels=16,
        causal=True,
        cache="feat_cache",
        frame_step=4,
        clamps_output=True,
        norm="rms",
        tiling_defaults={"tile_sample_min_height": 256, "tile_sample_min_width": 256,
                         "tile_sample_stride_height": 192, "tile_sample_stride_width": 192},
        decode_notes=("decode() already streams: one latent frame per decoder call, carrying a feature "
                      "cache (feat_cache) of the last 2 frames of every causal conv; the first latent "
                      "frame yields 1 pixel frame, every later one 4."),
        tiny_config={"base_dim": 8, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 1},
        decode_batch=1,
        cache_module="autoencoder_kl_wan:WanCausalConv3d",
        attention_block="WanAttentionBlock",
        split_rules={"WanDecoder3d": "composite", "WanMidBlock": "composite", "WanUpBlock": "composite",
                     "WanResidualBlock": "composite", "WanResample": "composite", "WanRMS_norm": "pointwise",
                     "WanUpsample": "upsample", "WanCausalConv3d": "conv:_padding"},
        split_requires={"WanResample": {"mode": ("none", "upsample2d", "upsample3d")}},
    ),
    "cogvideox": VAEFamily(
        name="cogvideox",
        diffusers_class="AutoencoderKLCogVideoX",
        repo_id="THUDM/CogVideoX-2b",
        subfolder="vae",
        spatial_compression=8,
        temporal_compression=4,
        latent_channels=16,
        causal=True,
        cache="conv_cache",
        frame_step=8,
        clamps_output=False,
        norm="group",
        tiling_defaults={"tile_sample_min_height": 240, "tile_sample_min_width": 360,
                         "tile_overlap_factor_height": 1 / 6, "tile_overlap_factor_width": 1 / 5},
        decode_notes=("decode() runs the decoder on batches of 2 latent frames (the first batch takes the "
                      "odd remainder, 3 frames) carrying conv_cache; GroupNorm statistics are computed "
                      "per batch, so the result depends on the batching."),
        tiny_config={"block_out_channels": (16, 16, 32, 32), "layers_per_block": 1, "norm_num_groups": 4,
                     "latent_channels": 16},
        chunk_multiple=2,
        chunk_reason="its temporal upsampler treats an odd chunk as the start of a new video",
        decode_batch=2,
        split_rules={"CogVideoXDecoder3D": "composite", "CogVideoXMidBlock3D": "composite",
                     "CogVideoXUpBlock3D": "composite", "CogVideoXResnetBlock3D": "composite",
                     "CogVideoXSpatialNorm3D": "composite", "CogVideoXCausalConv3d": "composite",
                     "CogVideoXUpsample3D": "composite", "CogVideoXSafeConv3d": "conv"},
        # replicate padding happens in the causal conv's own forward, which no halo exchange reaches
        split_requires={"CogVideoXCausalConv3d": {"pad_mode": ("constant", "first")}},
    ),
    "hunyuanvideo": VAEFamily(
        name="hunyuanvideo",
        diffusers_class="AutoencoderKLHunyuanVideo",
        repo_id="hunyuanvideo-community/HunyuanVideo",
        subfolder="vae",
        spatial_compression=8,
        temporal_compression=4,
        latent_channels=16,
        causal=True,
        cache=None,
        frame_step=4,
        clamps_output=False,
        norm="group",
        tiling_defaults={"tile_sample_min_height": 256, "tile_sample_min_width": 256,
                         "tile_sample_stride_height": 192, "tile_sample_stride_width": 192,
                         "tile_sample_min_num_frames": 16, "tile_sample_stride_num_frames": 12},
        decode_notes=("decode() tiles in time by default (use_framewise_decoding=True) once the latent has "
                      "more than 4 frames: windows of 17 pixel frames with stride 12, linearly blended; "
                      "causal convolutions but no cache between windows, so the result is inexact."),
        tiny_config={"block_out_channels": (16, 16, 32, 32), "layers_per_block": 1, "norm_num_groups": 4},
    ),
    "ltx-video": VAEFamily(
        name="ltx-video",
        diffusers_class="AutoencoderKLLTXVideo",
        repo_id="Lightricks/LTX-Video",
        subfolder="vae",
        spatial_compression=32,
        temporal_compression=8,
        latent_channels=128,
        causal=False,
        cache=None,
        frame_step=8,
        clamps_output=False,
        norm="rms",
        tiling_defaults={"tile_sample_min_height": 512, "tile_sample_min_width": 512,
                         "tile_sample_stride_height": 448, "tile_sample_stride_width": 448},
        decode_notes=("decode() runs the whole latent in one pass through a non-causal decoder; temporal "
                      "tiling exists only behind the attribute use_framewise_decoding (no public method)."),
        tiny_config={"block_out_channels": (8, 16, 32, 32), "decoder_block_out_channels": (8, 16, 32, 32),
                     "layers_per_block": (1, 1, 1, 1, 1), "decoder_layers_per_block": (1, 1, 1, 1, 1)},
    ),
    "mochi": VAEFamily(
        name="mochi",
        diffusers_class="AutoencoderKLMochi",
        repo_id="genmo/mochi-1-preview",
        subfolder="vae",
        spatial_compression=8,
        temporal_compression=6,
        latent_channels=12,
        causal=True,
        cache=None,
        frame_step=6,
        clamps_output=False,
        norm="group",
        tiling_defaults={"tile_sample_min_height": 256, "tile_sample_min_width": 256,
                         "tile_sample_stride_height": 192, "tile_sample_stride_width": 192},
        decode_notes="decode() runs the whole latent in one pass; framewise mode changes the padding.",
        # Mochi's GroupNorm has 32 groups hard-wired, so every width must be a multiple of 32.
        tiny_config={"encoder_block_out_channels": (32, 32, 32, 32), "decoder_block_out_channels": (32, 32, 32, 32),
                     "layers_per_block": (1, 1, 1, 1, 1), "add_attention_block": (False, False, False, False, False)},
    ),
}


def get_family(name: str) -> VAEFamily:
    """Look up a family by name; ValueError listing the valid names otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"model={name!r} is unknown; valid names: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def family_of(vae: torch.nn.Module) -> VAEFamily:
    """The registry family of a loaded diffusers VAE (by class)."""
    fam = getattr(vae, "_vaestudy_family", None)
    if fam is not None:
        return fam
    for f in FAMILIES.values():
        if type(vae).__name__ == f.diffusers_class:
            return f
    raise ValueError(f"vae of class {type(vae).__name__} is not a registry family ({', '.join(FAMILIES)})")


# ---------------------------------------------------------------------------------------------
# families by what they do: callers ask for a role, never for a name
# ---------------------------------------------------------------------------------------------
DEFAULT_FAMILY = "wan2.1"
"""The family a page or command uses when the reader names none."""

ROLES: dict[str, Callable[[VAEFamily], bool]] = {
    # carrying the cache is the full decode's arithmetic: chunks equal the full decode
    "exact stream": lambda f: f.streams_exactly,
    # carries a cache, but its GroupNorm pools over a chunk's frames, so chunks differ from the full decode
    "groupnorm stream": lambda f: f.streamable and f.norm == "group",
    # its own decode() tiles in time with overlapping windows
    "temporal windows": lambda f: f.temporal_window is not None,
}


def first_family(predicate: Callable[[VAEFamily], bool], what: str = "the predicate") -> VAEFamily:
    """The first family (in :data:`FAMILIES` order) for which ``predicate`` holds; ValueError naming ``what``."""
    for f in FAMILIES.values():
        if predicate(f):
            return f
    raise ValueError(f"no registry family satisfies {what} (families: {', '.join(FAMILIES)})")


def exemplar(role: str) -> VAEFamily:
    """The family that plays ``role`` (a key of :data:`ROLES`) in a comparison: the first that fits it."""
    if role not in ROLES:
        raise ValueError(f"role={role!r} is unknown; valid roles: {', '.join(ROLES)}")
    return first_family(ROLES[role], f"role {role!r}")
