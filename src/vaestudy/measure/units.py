"""One unit convention for every measurement, and the unit of every field a measurement returns.

Convention: every function of :mod:`vaestudy.measure` takes decoded videos in **decoded units** (the VAE's
output range [-1, 1]: 2 = full range, one 8-bit level = 2/255), and errors against a reference come out in the
same units (``max_abs``, ``mean_abs``, error maps). The one exception is deliberate and named: measures of change
between consecutive frames (``mafd``, spike ``excess``, warping error) are reported in **8-bit levels**, the unit
in which the published thresholds they are compared with are stated (VBench's flicker score, ComfyUI's chunk-seam
jumps); ``LEVELS_PER_UNIT`` converts. :data:`FIELD_UNITS` names the unit of every field any measurement returns,
and a test keeps it complete.
"""

from __future__ import annotations

DECODED = "decoded units ([-1, 1]; 2 = full range)"
LEVELS = "8-bit levels (255 = full range)"
DB = "dB"
RATIO = "ratio (1 = no effect)"
SHARE = "share of the total (0-1)"
PIXELS = "pixels"
COUNT = "count"
FLAG = "true/false"
SSIM = "SSIM (1 = identical)"
SCORE01 = "score (1 = perfectly still)"

LEVELS_PER_UNIT = 255.0 / 2.0  # 8-bit levels per decoded unit

FIELD_UNITS: dict[str, str] = {
    # the oracle: a decode against a reference decode (vaestudy.measure.oracle.compare)
    "max_abs": DECODED, "mean_abs": DECODED, "frame_max_abs": DECODED, "psnr_db": DB, "frame_psnr_db": DB,
    "within_8bit_level": FLAG, "seam_bands": "list of bands (fields below)",
    "band_start": PIXELS, "band_end": PIXELS, "pixels": COUNT,
    # seams (vaestudy.measure.metrics)
    "seam_db": DB, "interior_db": DB, "gap_db": DB, "band_px": PIXELS, "band_share": SHARE,
    "score": RATIO, "score_y": RATIO, "score_x": RATIO, "per_frame": RATIO, "lines": COUNT,
    # flicker
    "mafd": LEVELS, "mafd_mean": LEVELS, "mafd_at_boundary": LEVELS, "mafd_elsewhere": LEVELS,
    "at_boundary": LEVELS, "baseline": LEVELS, "excess": LEVELS, "spike_excess": LEVELS,
    "ratio": RATIO, "spike_ratio": RATIO, "first_jump_ratio": RATIO, "transitions": COUNT,
    "vbench_flicker": SCORE01, "hf_share": SHARE, "adjacent_ssim_mean": SSIM,
    "warp_error": LEVELS, "warp_per_pair": LEVELS, "warp_kept": SHARE,
}


def unit(field: str) -> str:
    """The unit of a measurement field; ValueError naming the field when the convention does not cover it."""
    if field not in FIELD_UNITS:
        raise ValueError(f"field={field!r} has no unit in vaestudy.measure.units.FIELD_UNITS; known: "
                         f"{', '.join(sorted(FIELD_UNITS))}")
    return FIELD_UNITS[field]
