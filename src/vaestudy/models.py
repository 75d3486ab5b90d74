"""Registry of diffusers 3D VAE families and how to load them.

Each :class:`VAEFamily` records what the study needs to know about a family without
decoding anything: the diffusers class, the real hub repo id, the compression factors,
which frame counts decode cleanly and the family's own tiling defaults.
:func:`load_vae` builds a model from one of three weight sources:

* ``"pretrained"`` – the real weights from the hub (or a local directory);
* ``"random"``     – the real full-size config with seeded random weights
  (right for latency and memory, meaningless for quality);
* ``"tiny"``       – a small config of the same class with seeded random weights,
  for fast tests and CI;
* ``"embedded"``   – a small model of the same class trained in-project on real clips and
  shipped inside the package (:mod:`vaestudy.embedded`), where one exists for the family.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

WEIGHT_SOURCES = ("pretrained", "random", "tiny", "embedded")


@dataclass(frozen=True)
class VAEFamily:
    """Static facts about one diffusers video VAE family (no model is built)."""

    name: str
    diffusers_class: str
    repo_id: str
    subfolder: str
    spatial_compression: int
    temporal_compression: int
    latent_channels: int
    causal: bool  # decoder convolutions are causal in time
    cache: str | None  # name of the decoder's carried temporal cache, if diffusers exposes one
    frame_step: int  # valid pixel frame counts are 1 + frame_step * k
    clamps_output: bool  # decode() clamps the output to [-1, 1]
    norm: str  # normalisation inside the decoder: "rms" (per-pixel) or "group" (spans space and time)
    tiling_defaults: dict[str, Any]
    decode_notes: str  # what the family's own decode() does inside
    tiny_config: dict[str, Any] = field(default_factory=dict)
    full_config: dict[str, Any] = field(default_factory=dict)  # overrides of the class defaults

    # ---- frame counts -------------------------------------------------------------
    @property
    def streamable(self) -> bool:
        """True when chunks can be decoded exactly by carrying the decoder's cache."""
        return self.cache is not None

    def valid_frame_counts(self, up_to: int = 200) -> list[int]:
        """Pixel frame counts (<= up_to) this family decodes without padding: 1 + frame_step*k."""
        return list(range(1, up_to + 1, self.frame_step))

    def check_frames(self, frames: int, name: str = "frames") -> None:
        t = self.frame_step
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1 or (frames - 1) % t != 0:
            examples = ", ".join(str(f) for f in self.valid_frame_counts(4 * t + 1))
            raise ValueError(
                f"{name}={frames!r} cannot be decoded cleanly by {self.name}: "
                f"valid counts are 1 + {t}*k ({examples}, ...)"
            )

    # ---- shapes -----------------------------------------------------------------
    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(channels, latent frames, latent height, latent width) for a pixel video."""
        self.check_frames(frames)
        s = self.spatial_compression
        for pname, v in (("height", height), ("width", width)):
            if not isinstance(v, int) or v <= 0 or v % s != 0:
                raise ValueError(f"{pname}={v!r} must be a positive multiple of {s} for {self.name}")
        return (self.latent_channels, (frames - 1) // self.temporal_compression + 1, height // s, width // s)

    def pixel_shape(self, latent_frames: int, latent_height: int, latent_width: int) -> tuple[int, int, int, int]:
        """(3, frames, height, width) that a latent of this size decodes to."""
        for pname, v in (("latent_frames", latent_frames), ("latent_height", latent_height), ("latent_width", latent_width)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"{pname}={v!r} must be a positive integer")
        s = self.spatial_compression
        return (3, self.pixel_frames(latent_frames), latent_height * s, latent_width * s)

    def check_latent_frames(self, latent_frames: int, name: str = "latent frames") -> None:
        """Latent frame counts must map back to a valid pixel count (odd counts for CogVideoX)."""
        step = self.frame_step // self.temporal_compression
        if latent_frames < 1 or (latent_frames - 1) % step != 0:
            raise ValueError(
                f"{name}={latent_frames} cannot be decoded cleanly by {self.name}: valid latent frame counts "
                f"are 1 + {step}*k (pixel frames 1 + {self.frame_step}*k)"
            )

    def pixel_frames(self, latent_frames: int) -> int:
        return (latent_frames - 1) * self.temporal_compression + 1

    def latent_to_pixel_frames(self, start: int, stop: int) -> tuple[int, int]:
        """Pixel frame range [a, b) produced by latent frames [start, stop) of a causal decode.

        Latent frame 0 yields pixel frame 0 alone; latent frame i >= 1 yields the
        temporal_compression frames that follow.
        """
        t = self.temporal_compression
        a = 0 if start == 0 else (start - 1) * t + 1
        b = 0 if stop == 0 else (stop - 1) * t + 1
        return a, b


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

OFFLINE_HELP = (
    "Pretrained weights for {name} ({repo}, subfolder {sub!r}) are not available offline. "
    "On a machine with internet run `hf download {repo} --include '{sub}/*'` "
    "(or pass a local directory: load_vae({name!r}, weights='pretrained', path='/dir/with/config.json')), "
    "or use weights='random' (real config, random weights: latency and memory only) or weights='tiny'."
)


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


def _vae_class(family: VAEFamily):
    import diffusers

    return getattr(diffusers, family.diffusers_class)


def check_weight_source(weights: str) -> None:
    """ValueError naming ``weights`` unless it is one of :data:`WEIGHT_SOURCES`."""
    if weights not in WEIGHT_SOURCES:
        raise ValueError(f"weights={weights!r} is not a weight source; valid: {', '.join(WEIGHT_SOURCES)}")


def load_vae(
    name: str,
    weights: str = "tiny",
    *,
    path: str | os.PathLike | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> torch.nn.Module:
    """Build a VAE of family ``name`` from a weight source (see module docstring).

    The returned model is in eval mode and carries ``weights_source`` (the source used) and
    ``_vaestudy_family`` so every result can record which weights produced it.
    """
    family = get_family(name)
    check_weight_source(weights)
    cls = _vae_class(family)
    if weights == "pretrained":
        vae = _load_pretrained(family, cls, path)
    elif weights == "embedded":
        from vaestudy.embedded import EMBEDDED, load_embedded

        if family.name not in EMBEDDED:
            raise ValueError(
                f"weights='embedded' is not available for model={name!r}; embedded models exist for: "
                f"{', '.join(EMBEDDED) or 'none yet'}"
            )
        vae = load_embedded(family.name)
    else:
        config = dict(family.full_config) if weights == "random" else dict(family.tiny_config)
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # module init draws from the global generator
        try:
            vae = cls(**config)
        finally:
            torch.random.set_rng_state(gen_state)
    if dtype != next(vae.parameters()).dtype:
        vae = vae.to(dtype=dtype)
    vae = vae.to(device=device).eval().requires_grad_(False)
    vae.weights_source = weights
    vae._vaestudy_family = family
    return vae


class WeightsUnavailable(OSError):
    """Pretrained weights that cannot be had here (offline, not in the cache); the message says what to run."""


@contextlib.contextmanager
def _quiet_hub():
    """Silence the hub's and diffusers' warnings while probing the cache: the one error that follows says it all."""
    import diffusers
    import huggingface_hub

    levels = (diffusers.utils.logging.get_verbosity(), huggingface_hub.utils.logging.get_verbosity())
    diffusers.utils.logging.set_verbosity_error()
    huggingface_hub.utils.logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        diffusers.utils.logging.set_verbosity(levels[0])
        huggingface_hub.utils.logging.set_verbosity(levels[1])


def _load_pretrained(family: VAEFamily, cls, path):
    if path is not None:
        p = Path(path)
        if not (p / "config.json").exists() and not (p / family.subfolder / "config.json").exists():
            raise ValueError(f"path={str(p)!r} holds no config.json (nor {family.subfolder}/config.json)")
        sub = family.subfolder if (p / family.subfolder / "config.json").exists() else None
        return cls.from_pretrained(p, subfolder=sub)
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    help_text = OFFLINE_HELP.format(name=family.name, repo=family.repo_id, sub=family.subfolder)
    try:
        # Look in the local cache first so an offline machine fails in milliseconds.
        with _quiet_hub():
            return cls.from_pretrained(family.repo_id, subfolder=family.subfolder, local_files_only=True)
    except (OSError, EnvironmentError) as exc:
        if offline:
            raise WeightsUnavailable(help_text) from exc
    try:
        return cls.from_pretrained(family.repo_id, subfolder=family.subfolder)
    except Exception as exc:  # network errors come in many classes
        raise WeightsUnavailable(help_text) from exc


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
