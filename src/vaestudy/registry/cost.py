"""What each family's released model costs: parameters and decode FLOPs per output pixel-frame, computed, never typed.

Parameters are counted on a model built from the family's full-size config on the ``meta`` device (shapes, no
memory), so even a 2.6 B-parameter decoder counts in a fraction of a second. FLOPs need the decode code
(:func:`vaestudy.bench.cost.count_decode_flops` runs the family's decode on meta tensors under
``torch.utils.flop_counter.FlopCounterMode``); because counting all families takes tens of seconds on a CPU, their
results are cached in ``cost.json`` next to this module. Regenerate it with ``python -m vaestudy.bench.cost``
(``--check`` recomputes and compares); ``tests/test_families_all.py`` recomputes one family's FLOPs and every
family's parameters against the file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from vaestudy.registry.families import get_family
from vaestudy.registry.family import VAEFamily

COST_FILE = Path(__file__).with_name("cost.json")
REGENERATE = "python -m vaestudy.bench.cost"


@dataclass(frozen=True)
class FamilyCost:
    """The released model's size and decode arithmetic, as counted (see the module docstring)."""

    name: str
    params: int  # every parameter of the model (encoder included)
    decoder_params: int  # the decoder and post_quant_conv: what a decode touches
    flops_per_pixel_frame: float  # decode FLOPs (multiply-add = 2) per output pixel per frame
    frames: int  # pixel frames of the counted decode
    height: int
    width: int
    counted_with: str  # which call was counted ("decode()" or "decoder pass")

    @property
    def mflops_per_pixel_frame(self) -> float:
        return self.flops_per_pixel_frame / 1e6


def build_on_meta(family: VAEFamily, config: str = "full") -> torch.nn.Module:
    """The family's diffusers class built from its ``full`` (released) or ``tiny`` config on the meta device.

    Parameters some classes create as explicit CPU tensors are moved to meta too, so a forward pass on meta
    tensors runs (shapes only).
    """
    import diffusers  # heavy: imported where a model is built, as registry/load.py does

    if config not in ("full", "tiny"):
        raise ValueError(f"config={config!r} must be 'full' or 'tiny'")
    kwargs = dict(family.full_config if config == "full" else family.tiny_config)
    # resolve the class first: diffusers imports its module lazily, and a module imported inside the meta context
    # would create its module-level tensors (e.g. a wavelet table) on meta for the whole process
    cls = getattr(diffusers, family.diffusers_class)
    with torch.device("meta"):
        vae = cls(**kwargs)
    vae = vae.to("meta").eval().requires_grad_(False)
    vae._vaestudy_family = family
    return vae


def parameter_counts(family: VAEFamily, config: str = "full") -> tuple[int, int]:
    """(all parameters, decoder + post_quant_conv parameters) of the family's config, counted on meta."""
    vae = build_on_meta(family, config)
    total = sum(p.numel() for p in vae.parameters())
    decoder = sum(p.numel() for n, p in vae.named_parameters() if n.startswith(("decoder.", "post_quant_conv.")))
    return total, decoder


def weight_bytes(family: VAEFamily, config: str = "full", dtype: torch.dtype = torch.float32) -> int:
    """Bytes the weights of the family's config take in ``dtype`` (parameters and buffers), counted on meta."""
    vae = build_on_meta(family, config)
    size = torch.empty((), dtype=dtype).element_size()
    return size * (sum(p.numel() for p in vae.parameters()) + sum(b.numel() for b in vae.buffers()))


def read_cost_file(path: Path = COST_FILE) -> dict[str, FamilyCost]:
    """Every cached :class:`FamilyCost` in ``path`` (empty when the file does not exist)."""
    if not Path(path).exists():
        return {}
    return {k: FamilyCost(**v) for k, v in json.loads(Path(path).read_text()).items()}


def write_cost_file(costs: dict[str, FamilyCost], path: Path = COST_FILE) -> None:
    Path(path).write_text(json.dumps({k: asdict(v) for k, v in costs.items()}, indent=1, sort_keys=True) + "\n")


def family_cost(name: str) -> FamilyCost:
    """The cached cost of family ``name``; ValueError naming the command that regenerates the cache if missing."""
    get_family(name)
    costs = read_cost_file()
    if name not in costs:
        raise ValueError(f"no cost counted for model={name!r} in {COST_FILE.name}; run `{REGENERATE}`")
    return costs[name]
