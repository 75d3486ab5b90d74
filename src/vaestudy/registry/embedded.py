"""The tiny models trained in-project and shipped in ``registry/weights/``: how to build, initialise and load them.

Everything the trainer (``vaestudy.training.train_tiny``) must know about a family lives here: the spelling of
its ``--family``, the tiny config, which recipe options its class takes (and why not, where it does not), the
defaults of its run, the conv that produces the posterior moments, and the decoder attention that
``--no-decoder-attention`` freezes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vaestudy.registry.families import family_of, get_family
from vaestudy.registry.family import VAEFamily

WEIGHTS_DIR = Path(__file__).parent / "weights"


def _wan_tiny_config(width: int) -> dict:
    """Wan 2.1's layout (causal convs, RMSNorm, ``feat_cache``), ``width`` channels in the first stage."""
    return {
        "base_dim": width, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 1,
        "attn_scales": [], "temperal_downsample": [False, True, True], "dropout": 0.0,
        "latents_mean": [0.0] * 16, "latents_std": [1.0] * 16,
    }


def _cogvideox_tiny_config(width: int) -> dict:
    """CogVideoX's layout (GroupNorm, ``conv_cache``), no quant convs, ``width`` channels in the first stage."""
    return {
        "block_out_channels": [width, 2 * width, 4 * width, 4 * width], "latent_channels": 16,
        "layers_per_block": 1, "norm_num_groups": 8, "temporal_compression_ratio": 4,
        "sample_height": 128, "sample_width": 128, "use_quant_conv": False, "use_post_quant_conv": False,
    }


@dataclass(frozen=True)
class EmbeddedModel:
    """Where one embedded model lives in the package, which diffusers class it is, and how the trainer builds it."""

    family: str  # registry key in vaestudy.registry.families.FAMILIES
    diffusers_class: str
    stem: str  # file stem in registry/weights/: <stem>.safetensors / .json / .md
    alias: str = ""  # the trainer's --family spelling (the shipped cards' commands record it)
    label: str = ""  # how the trainer's messages name the family
    config: Callable[[int], dict] | None = None  # first-stage width -> diffusers config of the tiny model
    # recipe options only some classes take: option -> config entries it adds (an option absent here is refused)
    option_config: dict[str, dict] = field(default_factory=dict)
    # recipe option -> the sentence the Markdown model card adds when a run sets it
    card_notes: dict[str, str] = field(default_factory=dict)
    train_defaults: dict[str, int] = field(default_factory=dict)  # --width, --frames, --steps left unset

    @property
    def weights_path(self) -> Path:
        return WEIGHTS_DIR / f"{self.stem}.safetensors"

    @property
    def card_json_path(self) -> Path:
        return WEIGHTS_DIR / f"{self.stem}.json"

    @property
    def card_md_path(self) -> Path:
        return WEIGHTS_DIR / f"{self.stem}.md"

    @property
    def shipped(self) -> bool:
        """True when the weights and the JSON card are present in the installed package."""
        return self.weights_path.exists() and self.card_json_path.exists()

    @property
    def vae_family(self) -> VAEFamily:
        """The registry entry of this model's family."""
        return get_family(self.family)


EMBEDDED: dict[str, EmbeddedModel] = {
    "wan2.1": EmbeddedModel(
        "wan2.1", "AutoencoderKLWan", "wan2.1-tiny", alias="wan", label="Wan", config=_wan_tiny_config,
        # diffusers' is_residual blocks are the Wan 2.2 VAE's down/up blocks: a parameter-free space-to-channel
        # shortcut around each resampling (AvgDown3D / DupUp3D); they learn faster on CPU.
        option_config={"residual": {"is_residual": True}},
        card_notes={"residual": "\nIts down and up blocks are diffusers' `is_residual` variant (the Wan 2.2 VAE's "
                                "blocks: a parameter-free space-to-channel\nshortcut around each resampling); "
                                "compression, latent channels, causal convolutions, RMSNorm and the\ndecoder's "
                                "`feat_cache` protocol are those of Wan 2.1."},
        train_defaults={"width": 16, "frames": 9, "steps": 2400},
    ),
    "cogvideox": EmbeddedModel(
        "cogvideox", "AutoencoderKLCogVideoX", "cogvideox-tiny", alias="cogvideox", label="CogVideoX",
        config=_cogvideox_tiny_config, train_defaults={"width": 16, "frames": 9, "steps": 1200},
    ),
}

# the trainer's --family spellings -> EMBEDDED key
EMBEDDED_ALIASES: dict[str, str] = {e.alias: key for key, e in EMBEDDED.items()}

# the recipe switches that change what is built, each checked by option_refusal
MODEL_OPTIONS = ("residual", "no_decoder_attention")


def embedded_entry(name: str) -> EmbeddedModel:
    """The embedded model named by a trainer spelling (``EMBEDDED_ALIASES``) or a registry key; ValueError otherwise."""
    key = EMBEDDED_ALIASES.get(name, name)
    if key not in EMBEDDED:
        raise ValueError(f"family={name!r} has no embedded model; valid: "
                         f"{', '.join(dict.fromkeys([*EMBEDDED_ALIASES, *EMBEDDED]))}")
    return EMBEDDED[key]


def option_takers(option: str) -> list[str]:
    """The trainer spellings of the embedded models that take recipe option ``option``."""
    return [e.alias for e in EMBEDDED.values() if option_refusal(e.alias, option) is None]


def option_refusal(name: str, option: str) -> str | None:
    """Why embedded model ``name`` cannot take the recipe option ``option`` (one of :data:`MODEL_OPTIONS`); None if it can."""
    e = embedded_entry(name)
    if option == "no_decoder_attention":
        if e.vae_family.attention_block is None:
            return f"{e.diffusers_class}'s decoder has no mid-block attention"
        return None
    if option == "residual":
        if option in e.option_config:
            return None
        takers = [t for t in EMBEDDED.values() if option in t.option_config]
        keys = sorted({k for t in takers for k in t.option_config[option]})
        return f"diffusers' {', '.join(keys)} blocks exist in {', '.join(t.diffusers_class for t in takers)} only"
    raise ValueError(f"option={option!r} is not a model option; valid: {', '.join(MODEL_OPTIONS)}")


def embedded_config(name: str, width: int, *, residual: bool = False) -> tuple[str, dict]:
    """(diffusers class, config) of the tiny model ``name`` (trainer spelling or registry key); ``width`` is the first
    stage's channel count.

    ``residual`` (AutoencoderKLWan only) turns on diffusers' ``is_residual`` blocks, the Wan 2.2 VAE's down/up blocks
    with a parameter-free space-to-channel shortcut around each resampling (AvgDown3D / DupUp3D).  Compression, latent
    channels, causal convs, RMSNorm and the decoder's ``feat_cache`` protocol are those of Wan 2.1.  It learns faster
    on CPU.  Trained with the decoder's mid-block attention on, it leaned on that attention (global over each frame's
    latent grid), and a tiled decode then differed from the full decode over whole tiles instead of at the seams; the
    shipped ``wan2.1-tiny`` is therefore residual with ``--no-decoder-attention`` (:func:`freeze_decoder_attention`).
    """
    e = embedded_entry(name)
    cfg = e.config(width)
    if residual:
        why = option_refusal(name, "residual")
        if why:
            takers = " or ".join(f"family={t!r}" for t in option_takers("residual"))
            raise ValueError(f"residual=True applies to {takers} only ({why})")
        cfg.update(e.option_config["residual"])
    return e.diffusers_class, cfg


def moments_conv(vae: torch.nn.Module) -> torch.nn.Conv3d:
    """The convolution whose output is the posterior's (mean, log-variance) moments, stacked on channels.

    ``quant_conv`` where the class has one (AutoencoderKLWan), else the encoder's ``conv_out``
    (AutoencoderKLCogVideoX built with ``use_quant_conv=False``, which wraps its Conv3d in a causal module).
    """
    conv = getattr(vae, "quant_conv", None)
    if conv is None:
        conv = vae.encoder.conv_out
    return getattr(conv, "conv", conv)


def decoder_attention(vae: torch.nn.Module) -> torch.nn.Module:
    """The decoder's mid-block attention, of the registry's ``attention_block`` class; ValueError where there is none."""
    family = family_of(vae)
    blocks = [m for m in getattr(getattr(vae.decoder, "mid_block", None), "attentions", None) or []
              if type(m).__name__ == family.attention_block]
    if family.attention_block is None or len(blocks) != 1:
        raise ValueError(f"{type(vae).__name__} ({family.name}) has no decoder mid-block attention to freeze "
                         f"(attention_block={family.attention_block!r}); families with one: "
                         f"{', '.join(f.name for f in map(get_family, EMBEDDED) if f.attention_block)}")
    return blocks[0]


def freeze_decoder_attention(vae: torch.nn.Module) -> None:
    """Make the decoder's mid-block attention the identity and keep it so.

    ``WanAttentionBlock`` returns ``proj(attention(norm(x))) + x``: with ``proj`` zeroed the block passes
    ``x`` through, and no gradient reaches ``norm``/``to_qkv`` (nor ``proj``, which is frozen).  The model keeps the
    diffusers class and config; only these weights are fixed.  Why: this attention is global over each frame's
    latent grid, so a model that leans on it decodes a tile differently from the full frame everywhere, not only
    near the seams (what we measured on a residual model trained with it).  Without it the decoder is purely
    convolutional and tiling error stays local to the seams, as with the plain model.
    """
    attn = decoder_attention(vae)
    with torch.no_grad():
        attn.proj.weight.zero_()
        attn.proj.bias.zero_()
    attn.requires_grad_(False)


def _entry(family_name: str) -> EmbeddedModel:
    if family_name not in EMBEDDED:
        raise ValueError(f"family_name={family_name!r} has no embedded model; valid: {', '.join(EMBEDDED)}")
    e = EMBEDDED[family_name]
    if not e.shipped:
        raise FileNotFoundError(
            f"embedded weights for {family_name!r} are missing ({e.weights_path.name}, {e.card_json_path.name} "
            f"in {WEIGHTS_DIR}); train and ship them with `python -m vaestudy.training.train_tiny --family "
            f"{e.alias}`"
        )
    return e


def embedded_card(family_name: str) -> dict:
    """The shipped JSON card: diffusers config, training recipe and measured held-out numbers."""
    return json.loads(_entry(family_name).card_json_path.read_text())


def build_model(diffusers_class: str, config: dict) -> torch.nn.Module:
    """A diffusers VAE of ``diffusers_class`` built from ``config`` (random weights, fp32)."""
    import diffusers

    classes = list(dict.fromkeys(e.diffusers_class for e in EMBEDDED.values()))
    if diffusers_class not in classes:
        raise ValueError(f"diffusers_class={diffusers_class!r}; valid: {', '.join(classes)}")
    cls = getattr(diffusers, diffusers_class)
    cfg = {k: v for k, v in config.items() if not k.startswith("_")}
    return cls.from_config(cfg)


def load_embedded(family_name: str) -> torch.nn.Module:
    """The shipped tiny model of a family ("wan2.1" or "cogvideox"): offline, eval mode, fp32, CPU."""
    from safetensors.torch import load_file

    e = _entry(family_name)
    card = embedded_card(family_name)
    model = build_model(e.diffusers_class, card["config"])
    state = {k: v.float() for k, v in load_file(str(e.weights_path)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{e.weights_path.name} does not match its config: missing={missing[:5]}, "
                           f"unexpected={unexpected[:5]}")
    return model.eval().float()
