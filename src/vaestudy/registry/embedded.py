"""The tiny models trained in-project and shipped in ``registry/weights/``: their cards and how to build and load them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class EmbeddedModel:
    """Where one embedded model lives in the package and which diffusers class it is."""

    family: str  # registry key in vaestudy.models
    diffusers_class: str
    stem: str  # file stem in vaestudy/weights/: <stem>.safetensors / .json / .md

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


EMBEDDED: dict[str, EmbeddedModel] = {
    "wan2.1": EmbeddedModel("wan2.1", "AutoencoderKLWan", "wan2.1-tiny"),
    "cogvideox": EmbeddedModel("cogvideox", "AutoencoderKLCogVideoX", "cogvideox-tiny"),
}


def _entry(family_name: str) -> EmbeddedModel:
    if family_name not in EMBEDDED:
        raise ValueError(f"family_name={family_name!r} has no embedded model; valid: {', '.join(EMBEDDED)}")
    e = EMBEDDED[family_name]
    if not e.shipped:
        raise FileNotFoundError(
            f"embedded weights for {family_name!r} are missing ({e.weights_path.name}, {e.card_json_path.name} "
            f"in {WEIGHTS_DIR}); train and ship them with `python -m vaestudy.training.train_tiny --family "
            f"{'wan' if family_name == 'wan2.1' else family_name}`"
        )
    return e


def embedded_card(family_name: str) -> dict:
    """The shipped JSON card: diffusers config, training recipe and measured held-out numbers."""
    return json.loads(_entry(family_name).card_json_path.read_text())


def build_model(diffusers_class: str, config: dict) -> torch.nn.Module:
    """A diffusers VAE of ``diffusers_class`` built from ``config`` (random weights, fp32)."""
    import diffusers

    if diffusers_class not in ("AutoencoderKLWan", "AutoencoderKLCogVideoX"):
        raise ValueError(f"diffusers_class={diffusers_class!r}; valid: AutoencoderKLWan, AutoencoderKLCogVideoX")
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
