"""vaestudy: decode experiments on real diffusers 3D VAEs (tiling, temporal chunking, streaming).

The public API, as a table of contents (every name is loaded on first use, so ``import vaestudy`` and the
command line stay fast):

==============  ==========================================================================================
registry        ``FAMILIES``, ``VAEFamily``, ``get_family``, ``family_of``, ``load_vae`` — the one home of
                family rules
decode          ``STRATEGIES`` (the strategy table), ``resolve``, ``run_strategy``, ``iter_strategy``,
                ``decode_full``, ``decode_tiled``, ``decode_chunked``, ``decode_tiled_chunked``, ``TilePlan``,
                ``random_latent``
measure         ``compare`` (the oracle), ``psnr`` (the one PSNR), ``receptive_field``; modules ``metrics``,
                ``artifacts``
bench           ``bench`` (runner, memory, store, roofline, planner), ``Clock`` (the one clock)
storage         ``storage`` (latent vs MP4 arithmetic, H.264 bits per pixel, latent compression)
pipelines       ``pipelines`` (decode overlap, two-device streaming, split decode, launching ranks)
training        ``training`` (real clips, the embedded models' training and held-out scores)
guide           ``guide`` (experiments, claims and verdicts, checklist, headlines)
report          ``report`` (papermill + nbconvert), ``plots`` (the one figure style)
==============  ==========================================================================================

Import direction (tests/test_architecture.py checks it): foundation (``devices``, ``clock``, ``tables``)
← ``registry`` ← ``decode`` ← ``measure`` / ``bench`` / ``storage`` ← ``pipelines`` / ``training`` / ``guide``
← ``report`` ← ``cli``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "vaestudy.registry": ("FAMILIES", "VAEFamily", "WEIGHT_SOURCES", "WeightsUnavailable", "family_of", "get_family",
                          "load_vae"),
    "vaestudy.decode": ("DecodeResult", "TilePlan", "decode_chunked", "decode_diffusers_tiled", "decode_full",
                        "decode_single_pass", "decode_tiled", "decode_tiled_chunked", "iter_chunked",
                        "iter_tiled_chunked"),
    "vaestudy.decode.strategies": ("STRATEGIES", "Strategy", "get_strategy", "iter_strategy", "resolve",
                                   "run_strategy", "strategies_for"),
    "vaestudy.decode.common": ("random_latent",),
    "vaestudy.decode.tiled": ("default_tile_plan",),
    "vaestudy.measure.oracle": ("compare", "psnr", "seam_concentration"),
    "vaestudy.measure.probe": ("minimal_overlap", "receptive_field"),
    "vaestudy.guide.comparisons": ("format_strategy_table", "strategy_table"),
    "vaestudy.clock": ("Clock",),
}
_NAME_TO_MODULE = {name: mod for mod, names in _EXPORTS.items() for name in names}
_SUBPACKAGES = ("bench", "clock", "decode", "devices", "guide", "measure", "pipelines", "plots", "registry",
                "report", "storage", "tables", "training")

__all__ = sorted(_NAME_TO_MODULE) + list(_SUBPACKAGES)


def __getattr__(name: str):
    if name in _NAME_TO_MODULE:
        value = getattr(importlib.import_module(_NAME_TO_MODULE[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"vaestudy.{name}")
    else:
        raise AttributeError(f"module 'vaestudy' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__
