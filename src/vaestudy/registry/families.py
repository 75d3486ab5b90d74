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
                     "WanUpsample": "upsample", "WanCausalConv3d": "conv:_padding",
                     # the residual up blocks (is_residual=True): DupUp3D moves channels into 2x2 pixel blocks, so
                     # each output row pair comes from one input row, like a nearest upsampler
                     "WanResidualUpBlock": "composite", "DupUp3D": "composite"},
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
    # ---- the newer diffusers video VAEs (issue 20). Values read from diffusers 0.42.1's classes; full_config_source
    # says where each released config came from. Parameter counts and FLOPs are computed (registry/cost.py).
    "wan2.2": VAEFamily(
        name="wan2.2",
        diffusers_class="AutoencoderKLWan",
        repo_id="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        subfolder="vae",
        spatial_compression=16,
        temporal_compression=4,
        latent_channels=48,
        causal=True,
        cache="feat_cache",
        frame_step=4,
        clamps_output=True,
        norm="rms",
        tiling_defaults={"tile_sample_min_height": 256, "tile_sample_min_width": 256,
                         "tile_sample_stride_height": 192, "tile_sample_stride_width": 192},
        decode_notes=("decode() runs the Wan 2.1 feat_cache path (one latent frame per decoder call) through a "
                      "residual decoder whose 12 output channels hold a 2x2 pixel patch; after the last call the "
                      "whole video is unpatchified to RGB and clamped. 8x from the decoder times the patch of 2 "
                      "gives 16x spatially; its own tiled decode blends tiles in the patch space (12 channels at half "
                      "size) and unpatchifies once."),
        tiny_config={"base_dim": 4, "decoder_base_dim": 8, "z_dim": 48, "dim_mult": [1, 2, 2, 2], "num_res_blocks": 1,
                     "is_residual": True, "in_channels": 12, "out_channels": 12, "patch_size": 2,
                     "scale_factor_spatial": 16, "latents_mean": [0.0] * 48, "latents_std": [1.0] * 48},
        # latents_mean/std are left neutral: they are metadata for pipelines and do not enter decode()
        full_config={"base_dim": 160, "decoder_base_dim": 256, "z_dim": 48, "is_residual": True, "in_channels": 12,
                     "out_channels": 12, "patch_size": 2, "scale_factor_spatial": 16,
                     "latents_mean": [0.0] * 48, "latents_std": [1.0] * 48},
        full_config_source=("vae/config.json of Wan-AI/Wan2.2-TI2V-5B-Diffusers as mirrored on the hub "
                            "(nvidia/Cosmos3-Edge names it as _name_or_path); dim_mult, num_res_blocks, "
                            "temperal_downsample equal the class defaults"),
        decode_batch=1,
        cache_module="autoencoder_kl_wan:WanCausalConv3d",
        attention_block="WanAttentionBlock",  # the same mid-block attention class as Wan 2.1's decoder
    ),
    "hunyuanvideo1.5": VAEFamily(
        name="hunyuanvideo1.5",
        diffusers_class="AutoencoderKLHunyuanVideo15",
        repo_id="hunyuanvideo-community/HunyuanVideo-1.5-480p_t2v",
        subfolder="vae",
        spatial_compression=16,
        temporal_compression=4,
        latent_channels=32,
        causal=True,
        cache=None,
        frame_step=4,
        clamps_output=False,
        norm="rms",
        tiling_defaults={"tile_sample_min_height": 256, "tile_sample_min_width": 256, "tile_overlap_factor": 0.25},
        decode_notes=("decode() runs the whole latent through the decoder in one call (causal convolutions, no "
                      "cache); the mid-block attention spans every latent position of the clip under a causal "
                      "frame mask built as a dense N x N tensor, N = latent frames * latent height * latent width "
                      "(filled by a Python loop over N rows). Spatial tiling only when enabled: 256 px tiles, "
                      "overlap factor 0.25."),
        # the encoder averages its last block's channels in groups of block_out_channels[-1] // (2 * latent
        # channels) and each downsample in groups of factor * in // out: both must be >= 1 (with (8, 8, 8, 8, 32)
        # the groups are 0 and encode() fails with a reshape error)
        tiny_config={"block_out_channels": (8, 16, 32, 64, 64), "layers_per_block": 1},
        dense_attention_mask=True,
        full_config_source=("class defaults; the repo id is the one HunyuanVideo15Pipeline's docstring loads; "
                            "its vae/config.json was not read here"),
    ),
    "ltx2": VAEFamily(
        name="ltx2",
        diffusers_class="AutoencoderKLLTX2Video",
        repo_id="Lightricks/LTX-2",
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
        decode_notes=("decode() runs the whole latent in one pass through a non-causal decoder (per-channel RMS "
                      "norm, 4x4 pixel unpatchify at the end); spatial tiles of 512 px, stride 448, when enabled; "
                      "temporal tiles (16 frames, stride 8) only with use_framewise_decoding."),
        tiny_config={"block_out_channels": (8, 16, 32, 64), "decoder_block_out_channels": (8, 16, 32),
                     "layers_per_block": (1, 1, 1, 1, 1), "decoder_layers_per_block": (1, 1, 1, 1),
                     "decoder_causal": False},
        full_config={"decoder_causal": False},
        full_config_source=("vae/config.json of Lightricks/LTX-2 as mirrored on the hub (SANA-Video_2B_720p "
                            "names it as _name_or_path): equal to the class defaults except decoder_causal=false"),
    ),
    "cosmos": VAEFamily(
        name="cosmos",
        diffusers_class="AutoencoderKLCosmos",
        repo_id="nvidia/Cosmos-1.0-Tokenizer-CV8x8x8",
        subfolder="vae",
        spatial_compression=8,
        temporal_compression=8,
        latent_channels=16,
        causal=True,
        cache=None,
        frame_step=8,
        clamps_output=False,
        norm="group",
        tiling_defaults={"tile_sample_min_height": 512, "tile_sample_min_width": 512,
                         "tile_sample_stride_height": 448, "tile_sample_stride_width": 448},
        decode_notes=("decode() runs post_quant_conv and the whole latent through the causal decoder in one pass, "
                      "ending in an inverse Haar wavelet (patch 4); its GroupNorms have one group and run frame by "
                      "frame. enable_tiling() sets use_tiling and tile sizes (512/448 px, 16/8 frames) that _decode "
                      "never reads."),
        tiny_config={"encoder_block_out_channels": (8, 8, 8, 8), "decode_block_out_channels": (8, 8, 8, 8),
                     "num_layers": 1},
        full_config_source=("class defaults, which are the CV8x8x8 tokenizer the diffusers docs load "
                            "(spatial 8, temporal 8, 16 channels); its config.json was not read here"),
    ),
    "easyanimate": VAEFamily(
        name="easyanimate",
        diffusers_class="AutoencoderKLMagvit",
        repo_id="alibaba-pai/EasyAnimateV5.1-12b-zh",
        subfolder="vae",
        spatial_compression=8,
        temporal_compression=4,
        latent_channels=16,
        causal=True,
        cache="prev_features",
        frame_step=4,
        clamps_output=False,
        norm="group",
        tiling_defaults={"tile_sample_min_height": 512, "tile_sample_min_width": 512,
                         "tile_sample_stride_height": 448, "tile_sample_stride_width": 448},
        decode_notes=("decode() decodes the first latent frame alone, then one latent frame per decoder call; the "
                      "causal convolutions keep their own conv cache between calls (cleared at the end); GroupNorm "
                      "runs frame by frame (spatial_group_norm). Spatial tiles of 512 px, stride 448, when enabled."),
        tiny_config={"block_out_channels": (8, 8, 8, 8), "layers_per_block": 1, "norm_num_groups": 4},
        full_config_source=("class defaults; the repo id is the one the diffusers docs load the class from; its "
                            "vae/config.json was not read here"),
        decode_batch=1,
        # its GroupNorm runs frame by frame (spatial_group_norm=True, the class default), so no statistics span a
        # streamed chunk
        norm_pools_frames=False,
    ),
    "allegro": VAEFamily(
        name="allegro",
        diffusers_class="AutoencoderKLAllegro",
        repo_id="rhymes-ai/Allegro",
        subfolder="vae",
        spatial_compression=8,
        temporal_compression=4,
        latent_channels=4,
        causal=False,
        cache=None,
        frame_step=16,
        clamps_output=False,
        norm="group",
        tiling_defaults={"kernel": (24, 320, 320), "overlap": (8, 120, 80)},
        decode_notes=("decode() has no untiled path (it raises NotImplementedError unless use_tiling): 3-D tiles "
                      "of 24 frames x 320 x 320 px with overlaps 8/120/80, each through the decoder, blended; a "
                      "latent off that grid leaves its last rows/frames uncovered (zeros). It returns "
                      "(batch, frames, channels, h, w)."),
        # sample_size 128: 3-D tiles of 24 x 128 x 128 px (6 x 16 x 16 latent), strides 4 x 1 x 6 latent
        tiny_config={"block_out_channels": (8, 8, 8, 8), "layers_per_block": 1, "norm_num_groups": 4,
                     "sample_size": 128},
        full_config_source=("class defaults; the repo id and subfolder are the ones AllegroPipeline's docstring "
                            "loads; its vae/config.json was not read here"),
        frame_grid=(6, 4, 24, 16),
        decode_tiling="only",
        output_layout="btchw",
    ),
    "kvae": VAEFamily(
        name="kvae",
        diffusers_class="AutoencoderKLKVAEVideo",
        repo_id="kandinskylab/KVAE-3D-1.0",
        subfolder="diffusers",
        spatial_compression=8,
        temporal_compression=4,
        latent_channels=16,
        causal=True,
        cache="cache_dict",
        frame_step=4,
        clamps_output=False,
        norm="group",
        tiling_defaults={},
        decode_notes=("decode() splits the latent into segments covering 17 then 16 pixel frames (5, then 4 "
                      "latent frames) and runs each through the decoder with one cache dict that carries the "
                      "causal convolutions' frames; its 'cached' GroupNorm only stores placeholders (mean = var = 1) "
                      "and normalises every segment with that segment's own statistics; no spatial tiling."),
        tiny_config={"ch": 32, "ch_mult": (1, 1, 1, 1), "num_res_blocks": 1},  # its GroupNorm has 32 groups
        full_config_source=("class defaults; repo id and subfolder from the diffusers docs (v0.39) for "
                            "AutoencoderKLKVAEVideo; its config.json was not read here"),
        chunk_min=2,
        decode_segments=(5, 4),
        chunk_reason=("a decoder call of one latent frame skips its temporal upsampling (time factor 1 + "
                      "(frames > 1)) and its causal convs keep one frame of padding instead of two"),
    ),
    "minimax-h3": VAEFamily(
        name="minimax-h3",
        diffusers_class="AutoencoderKLMiniMaxH3",
        repo_id="MiniMaxAI/MiniMax-H3",
        subfolder="vae",
        spatial_compression=16,
        temporal_compression=4,
        latent_channels=24,
        causal=False,
        cache=None,
        frame_step=17,
        clamps_output=False,
        norm="rms",
        tiling_defaults={"tile_sample_min_height": 256, "tile_sample_min_width": 256,
                         "tile_sample_min_overlap_height": 64, "tile_sample_min_overlap_width": 64},
        decode_notes=("decode() decodes clips of 5 + 2 latent frames (17 pixel frames each, from clip_length=17 "
                      "and token_drop=3) through a 36-layer non-causal ViT whose attention spans every latent voxel "
                      "of the clip (each token becomes a 4 x 16 x 16 pixel block), and linearly cross-fades "
                      "consecutive clips over their 5 shared pixel frames; spatial tiling is ON by default (256 px "
                      "tiles, >= 64 px overlap): the released frames are the tiled ones. Output is "
                      "ImageNet-normalised, not [-1, 1]."),
        tiny_config={"block_out_channels": (8, 8, 8, 8, 8, 8), "layers_per_block": 1, "norm_num_groups": 4,
                     "decoder_num_layers": 1, "decoder_num_attention_heads": 2, "decoder_attention_head_dim": 8},
        full_config_source=("class defaults, equal to MiniMaxAI/MiniMax-H3 vae/config.json (read on the hub) "
                            "except latents_mean/std, which do not enter decode()"),
        frame_grid=(7, 5, 22, 17),
        decode_tiling="default",
    ),
    "vidtok": VAEFamily(
        name="vidtok",
        diffusers_class="AutoencoderVidTok",
        repo_id="microsoft/VidTok",
        subfolder="",
        spatial_compression=8,
        temporal_compression=4,
        latent_channels=4,
        causal=True,
        cache="causal_cache",
        frame_step=4,
        clamps_output=False,
        norm="rms",
        tiling_defaults={"tile_sample_min_height": 256, "tile_sample_min_width": 256,
                         "tile_overlap_factor_height": 0.0, "tile_overlap_factor_width": 0.0},
        decode_notes=("decode() runs the causal decoder over the whole latent in one call and drops its first 3 "
                      "output frames (LayerNorm over channels, per pixel); only the tiled path (enable_tiling) also "
                      "splits time into 4-latent-frame chunks carrying causal_cache. UNSURE: microsoft/VidTok ships "
                      "original .ckpt checkpoints, no diffusers config is known, so 'pretrained' may not load."),
        tiny_config={"ch": 8, "ch_mult": [1, 1, 1, 1], "num_res_blocks": 1, "z_channels": 4},
        full_config_source="class defaults (z_channels 4); released VidTok variants differ and none was read here",
        stream_caveat=("its temporal upsampler interpolates trilinearly, reading one latent frame ahead; its own "
                       "chunk protocol (tiled_decode: one frame ahead, cache_offset) caches the look-ahead frames "
                       "of the first call as the left neighbours of the next, where the one-pass decode() restarts "
                       "the interpolation at latent frame 1, so pixel frames after the first differ"),
    ),
    "svd": VAEFamily(
        name="svd",
        diffusers_class="AutoencoderKLTemporalDecoder",
        repo_id="stabilityai/stable-video-diffusion-img2vid-xt",
        subfolder="vae",
        spatial_compression=8,
        temporal_compression=1,
        latent_channels=4,
        causal=False,
        cache=None,
        frame_step=1,
        clamps_output=False,
        norm="group",
        tiling_defaults={},
        decode_notes=("decode(z, num_frames) takes one 4-channel latent per frame as a (batch*frames, 4, h, w) "
                      "batch: a 2-D image decoder whose mid and up blocks add temporal mixing across the frames of "
                      "the clip, a temporal conv at the end; no tiling, no compression in time."),
        tiny_config={"block_out_channels": (32, 32, 32, 32), "down_block_types": ("DownEncoderBlock2D",) * 4,
                     "layers_per_block": 1},  # its GroupNorm has 32 groups
        full_config={"block_out_channels": (128, 256, 512, 512), "down_block_types": ("DownEncoderBlock2D",) * 4,
                     "layers_per_block": 2, "sample_size": 768},
        full_config_source=("vae/config.json of stabilityai/stable-video-diffusion-img2vid-xt as mirrored on the "
                            "hub (several mirrors agree)"),
        frame_grid=(1, 1, 1, 1),
        per_frame_latents=True,
    ),
}


def get_family(name: str) -> VAEFamily:
    """Look up a family by name; ValueError listing the valid names otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"model={name!r} is unknown; valid names: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def config_latent_channels(config) -> int | None:
    """Latent channels a diffusers VAE config declares (its classes name them z_dim, latent_channels or z_channels)."""
    for key in ("z_dim", "latent_channels", "z_channels"):
        v = getattr(config, key, None)
        if v:
            return int(v)
    return None


def family_of(vae: torch.nn.Module) -> VAEFamily:
    """The registry family of a loaded diffusers VAE: by class, and by latent channels where families share a class.

    Two configs of one class (Wan 2.1's 16-channel and Wan 2.2's 48-channel AutoencoderKLWan) are told apart by the
    latent channels their config declares, never by the class name alone.
    """
    fam = getattr(vae, "_vaestudy_family", None)
    if fam is not None:
        return fam
    candidates = [f for f in FAMILIES.values() if type(vae).__name__ == f.diffusers_class]
    if len(candidates) > 1:
        channels = config_latent_channels(getattr(vae, "config", None))
        candidates = [f for f in candidates if f.latent_channels == channels]
        if len(candidates) != 1:
            raise ValueError(f"vae of class {type(vae).__name__} with {channels} latent channels matches "
                             f"{len(candidates)} registry families; known: "
                             + ", ".join(f"{f.name} ({f.latent_channels} ch)" for f in FAMILIES.values()
                                         if f.diffusers_class == type(vae).__name__))
    if candidates:
        return candidates[0]
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
    "groupnorm stream": lambda f: f.streamable and f.norm == "group" and not f.streams_exactly,
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
