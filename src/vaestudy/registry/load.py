"""Building a VAE from a weight source: pretrained (hub or local), random full-size, tiny, or embedded."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import torch

from vaestudy.registry.cost import weight_bytes
from vaestudy.registry.embedded import EMBEDDED, load_embedded
from vaestudy.registry.families import get_family
from vaestudy.registry.family import VAEFamily

WEIGHT_SOURCES = ("pretrained", "random", "tiny", "embedded")
RANDOM_BUDGET_BYTES = 24 * 2 ** 30  # the largest full-size model load_vae builds with random weights by default

OFFLINE_HELP = (
    "Pretrained weights for {name} ({repo}, subfolder {sub!r}) are not available offline. "
    "On a machine with internet run `{command}` "
    "(or pass a local directory: load_vae({name!r}, weights='pretrained', path='/dir/with/config.json')), "
    "or use weights='random' (real config, random weights: latency and memory only) or weights='tiny'."
)


def download_command(family: VAEFamily) -> str:
    """The ``hf download`` command (the CLI huggingface_hub installs) that fetches a family's pretrained weights."""
    if family.subfolder:
        return f"hf download {family.repo_id} --include '{family.subfolder}/*'"
    return f"hf download {family.repo_id}"


def offline_help(family: VAEFamily) -> str:
    """What to run when a family's pretrained weights are not here (the message of :class:`WeightsUnavailable`)."""
    return OFFLINE_HELP.format(name=family.name, repo=family.repo_id, sub=family.subfolder,
                               command=download_command(family))


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
    max_bytes: int | None = RANDOM_BUDGET_BYTES,
) -> torch.nn.Module:
    """Build a VAE of family ``name`` from a weight source (see module docstring).

    The returned model is in eval mode and carries ``weights_source`` (the source used) and
    ``_vaestudy_family`` so every result can record which weights produced it. ``weights='random'`` first counts
    the full-size weights on the meta device and refuses (ValueError naming the size) above ``max_bytes``
    (None: no limit).
    """
    family = get_family(name)
    check_weight_source(weights)
    if weights == "random" and max_bytes is not None:
        need = weight_bytes(family, "full", torch.float32)  # built in fp32, then cast
        if need > max_bytes:
            raise ValueError(
                f"weights='random' for model={name!r} builds {need / 2 ** 30:.1f} GiB of fp32 weights (counted on "
                f"the meta device), above max_bytes={max_bytes / 2 ** 30:.1f} GiB; use weights='tiny', or pass a "
                "larger max_bytes on a machine with the memory")
    cls = _vae_class(family)
    if weights == "pretrained":
        vae = _load_pretrained(family, cls, path)
    elif weights == "embedded":

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


def _needs_accelerate(cls) -> str | None:
    """Why diffusers cannot load ``cls`` here: it pins modules to fp32, which from_pretrained only does through
    accelerate's low-memory loading; None when it can."""
    if not getattr(cls, "_keep_in_fp32_modules", None):
        return None
    try:
        import accelerate  # noqa: F401  (optional: only its presence matters)
    except ImportError:
        return (f"{cls.__name__} pins modules to fp32 (_keep_in_fp32_modules), which diffusers' from_pretrained "
                "loads only with the accelerate package: run `pip install accelerate`")
    return None


def _load_pretrained(family: VAEFamily, cls, path):
    missing = _needs_accelerate(cls)
    cannot = WeightsUnavailable(f"pretrained weights for {family.name} cannot be loaded here: {missing}")
    if missing and path is not None:
        raise cannot
    if path is not None:
        p = Path(path)
        nested = bool(family.subfolder) and (p / family.subfolder / "config.json").exists()
        if not (p / "config.json").exists() and not nested:
            raise ValueError(f"path={str(p)!r} holds no config.json (nor {family.subfolder or '.'}/config.json)")
        sub = family.subfolder if nested else None
        return cls.from_pretrained(p, subfolder=sub)
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    help_text = offline_help(family) + (f" Note: {missing}." if missing else "")
    sub = family.subfolder or None
    try:
        # Look in the local cache first so an offline machine fails in milliseconds.
        with _quiet_hub():
            return cls.from_pretrained(family.repo_id, subfolder=sub, local_files_only=True)
    except (OSError, EnvironmentError) as exc:
        if offline:
            raise WeightsUnavailable(help_text) from exc
    except ValueError as exc:  # the files are here, but diffusers refuses to load the class without accelerate
        if missing:
            raise cannot from exc
        raise
    try:
        return cls.from_pretrained(family.repo_id, subfolder=sub)
    except Exception as exc:  # network errors come in many classes
        raise WeightsUnavailable(help_text) from exc


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
