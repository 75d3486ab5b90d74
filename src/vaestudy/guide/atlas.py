"""The family atlas: one row per registry family, its static facts beside what a small decode measures here.

Static (read from the registry, nothing runs): compression, latent channels, raw-RGB compression ratio, latent bytes
per pixel-frame, what the family's own ``decode()`` does. Counted on the released config (``registry/cost.json``,
:func:`vaestudy.registry.cost.family_cost`): parameters and decode FLOPs per output pixel-frame. Measured on this
machine with the family's tiny config (random weights: shapes, exactness and timing ratios carry over to the real
model, quality does not): the chunked decode's error against the family's own decode (with the cache where the
family has one, overlapping windows where it has none), time to first frame as a share of the full decode's time,
peak memory per output pixel-frame, and the receptive field, with a probe grown until it no longer bounds the radius.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaestudy.bench.memory import PeakMemory
from vaestudy.decode.common import clear_vae_cache, decoder_attention_classes, fit_own_tiles, random_latent
from vaestudy.decode.strategies import resolve, run_strategy
from vaestudy.decode.streams import latent_frames_streamed
from vaestudy.guide.claims import _Reference, raw_compression
from vaestudy.measure.oracle import compare
from vaestudy.measure.probe import filled_weights, receptive_field, zero_weights
from vaestudy.registry.cost import family_cost
from vaestudy.registry.families import FAMILIES, family_of, get_family
from vaestudy.registry.family import VAEFamily
from vaestudy.registry.load import WeightsUnavailable, check_weight_source, load_vae

PROBE_SIZES = (8, 16, 32)  # latent pixels per side tried in turn until the 99% radius sits inside the probe
PROBE_FRAMES = 2  # latent frames of the receptive-field probe (the smallest valid count from here up)


@dataclass(frozen=True)
class AtlasSize:
    """The small decode each family is measured at: latent frames and latent pixels per side."""

    latent_frames: int = 5
    latent_side: int = 4

    def __post_init__(self):
        for name in ("latent_frames", "latent_side"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}={v!r} must be an integer >= 1")


def static_row(family: VAEFamily) -> dict:
    """What the registry and the cost file say of ``family`` (nothing runs)."""
    s, t, c = family.spatial_compression, family.temporal_compression, family.latent_channels
    row = {"family": family.name, "class": family.diffusers_class, "compression": f"{s}x{s}x{t}",
           "latent_channels": c, "raw_ratio": raw_compression(family.name),  # raw RGB values per latent value
           "latent_bytes_per_px_frame": 2 * c / (s * s * t),  # fp16 latent bytes per output pixel-frame
           "causal": family.causal, "cache": family.cache or "-", "norm": family.norm,
           "decode": family.decode_notes}
    try:
        cost = family_cost(family.name)
        row.update(params=cost.params, decoder_params=cost.decoder_params,
                   mflops_per_px=cost.mflops_per_pixel_frame)
    except ValueError:
        row.update(params=None, decoder_params=None, mflops_per_px=None)
    return row


def chunk_comparison(vae, z: torch.Tensor) -> dict:
    """The family's own decode beside its streamed decode (cache carried, or overlapping windows without a cache):
    max |err| and PSNR between them, time to first frame as a share of the full decode, the full decode's peak bytes."""
    family = family_of(vae)
    clear_vae_cache(vae)
    probe = PeakMemory(z.device)  # nothing runs beside the decode while it measures: one decode gives time and peak
    probe.start()
    full = run_strategy("full", vae, z)
    peak = probe.stop()["peak_bytes"]
    stream = "chunked" if family.streamable else "chunked-window"
    clear_vae_cache(vae)
    try:
        ch = run_strategy(stream, vae, z, **resolve(stream, family, tuple(z.shape[2:])))
    except ValueError as exc:  # a family whose frame rule leaves no valid chunk of this latent
        return {"stream": stream, "error": str(exc), "full_s": full.total_seconds, "peak_bytes": peak,
                "pixel_frames": full.video.shape[2] * full.video.shape[3] * full.video.shape[4]}
    finally:
        clear_vae_cache(vae)
    cmp = compare(full.video, ch.video)
    return {"stream": stream, "exact_by_construction": ch.exact, "max_abs": cmp["max_abs"], "psnr_db": cmp["psnr_db"],
            "ttff_share": ch.first_frame_seconds / full.total_seconds, "full_s": full.total_seconds,
            "peak_bytes": peak, "pixel_frames": full.video.shape[2] * full.video.shape[3] * full.video.shape[4]}


def unbounded_receptive_field(vae, latent_frames: int, sizes=PROBE_SIZES, *, seed: int = 0) -> dict:
    """The receptive field probe on growing latent sizes until the 99% radius is inside the probe (radius below the
    largest distance the probe can show, ``side // 2 - 1``); ``bounded`` says when even the largest probe held it."""
    for side in sizes:
        rf = receptive_field(vae, (latent_frames, side, side), seed=seed)
        limit = side // 2 - 1
        if rf["radii"][0.99] < limit:
            return {"rf": rf, "probe_side": side, "bounded": False}
    return {"rf": rf, "probe_side": sizes[-1], "bounded": True}


def measured_row(name: str, size: AtlasSize = AtlasSize(), *, seed: int = 0, device: str = "cpu",
                 probe_sizes=PROBE_SIZES, weights: str = "tiny") -> dict:
    """The family decoded here at ``size`` from ``weights`` (pretrained weights that cannot be had here fall back to
    the tiny config, and the row says so in ``weights``): the chunk comparison and the receptive field.

    A random initialisation (``tiny``, ``random``) leaves some weights exactly zero (a residual branch's scale, a
    temporal mixing logit: :func:`~vaestudy.measure.probe.zero_weights`); a zero residual scale makes its block the
    identity, which would make a stream or a probe look more local than the architecture is. Those weights are set
    to 1 for the measurements, as a trained model's are not zero, and ``filled`` names them."""
    family = get_family(name)
    check_weight_source(weights)
    try:
        vae = load_vae(name, weights, seed=seed, device=device)
    except WeightsUnavailable:
        weights = "tiny"
        vae = load_vae(name, weights, seed=seed, device=device)
    # at least two stream steps: a stream of one window would be the family's own decode, trivially the same
    lf, side, _ = fit_own_tiles(vae, (latent_frames_streamed(family, size.latent_frames), size.latent_side,
                                      size.latent_side))
    s = family.spatial_compression
    z = random_latent(vae, family.pixel_frames(lf), (side * s, side * s), seed=seed)
    filled = zero_weights(vae) if weights in ("tiny", "random") else []
    with filled_weights(vae, filled):
        row = {"family": name, "weights": weights, "latent": (lf, side, side), **chunk_comparison(vae, z),
               "attention": decoder_attention_classes(vae), "filled": filled}
        row["peak_bytes_per_px_frame"] = row["peak_bytes"] / row["pixel_frames"]
        try:
            rf = unbounded_receptive_field(vae, family.latent_frames_at_least(PROBE_FRAMES), probe_sizes, seed=seed)
            row.update(rf_90=rf["rf"]["radii"][0.9], rf_99=rf["rf"]["radii"][0.99], rf_probe=rf["probe_side"],
                       rf_bounded=rf["bounded"])
        except (ValueError, RuntimeError, NotImplementedError) as exc:  # a decode the probe cannot differentiate
            row.update(rf_90=None, rf_99=None, rf_probe=None, rf_bounded=None,
                       rf_error=f"{type(exc).__name__}: {exc}")
    return row


def family_atlas(names=None, size: AtlasSize = AtlasSize(), *, seed: int = 0, device: str = "cpu",
                 probe_sizes=PROBE_SIZES, weights: str = "tiny") -> list[dict]:
    """One row per family (default: every registry family): :func:`static_row` merged with :func:`measured_row`."""
    names = list(FAMILIES) if names is None else list(names)
    for n in names:
        get_family(n)  # a bad name fails before any decode
    check_weight_source(weights)
    return [{**static_row(get_family(n)),
             **measured_row(n, size, seed=seed, device=device, probe_sizes=probe_sizes, weights=weights)}
            for n in names]


def gpu_reference_rows(name: str, strategy: str = "full") -> dict:
    """The reference's records of ``strategy`` per family (shape, seconds, peak bytes, per pixel-frame, throughput) and
    the label every reader of them shows (device, dtype; not this machine)."""
    ref = _Reference(name)
    rows = []
    for r in ref.data["bench"]:
        if r["strategy"] != strategy:
            continue
        wall = r["wall_s"]["median"] if isinstance(r["wall_s"], dict) else r["wall_s"]
        rows.append({"family": r["model"], "shape": f"{r['frames']}x{r['size'][0]}x{r['size'][1]}", "seconds": wall,
                     "peak_bytes": r["peak_bytes"], "peak_bytes_per_px_frame": r["peak_bytes"] / r["pixel_frames"],
                     "px_frames_per_s": r["pixel_frames"] / wall})
    return {"label": ref.label, "rows": rows, "readme": ref.data["readme"]}


def frame_global_ops(row: dict) -> list[str]:
    """The operations of an atlas row's decoder that mix a whole frame: its attention classes (read from the loaded
    decoder) and a GroupNorm (the registry's ``norm``), whose statistics pool every pixel of the frame. Through them
    every latent pixel reaches every output pixel, so the gradient mass never fits in a finite receptive field."""
    return list(row.get("attention") or []) + (["GroupNorm"] if row.get("norm") == "group" else [])


def exactness_word(row: dict, exact_abs: float) -> str:
    """How the streamed decode relates to the family's own: the words chosen by the measured error."""
    if "max_abs" not in row:
        return "no valid chunk"
    same = row["max_abs"] < exact_abs
    kind = "cache" if row["stream"] == "chunked" else "windows"
    return f"{kind}: {'same decode' if same else 'differs'} ({row['max_abs']:.1e})"


def fmt_count(n: float | None, unit: str = "") -> str:
    """1.3 B / 127 M / 42 k style for parameter counts (``-`` when not counted)."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "-"
    for div, suffix in ((1e9, " B"), (1e6, " M"), (1e3, " k")):
        if n >= div:
            return f"{n / div:.1f}{suffix}{unit}"
    return f"{n:.0f}{unit}"
