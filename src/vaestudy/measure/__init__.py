"""Judging arrays: the exactness oracle (the one PSNR), seam and flicker metrics, injected artefacts of
known size, and the receptive-field probe. Only the probe needs a model. Units: one convention, stated in
:mod:`vaestudy.measure.units` (decoded units in, errors in decoded units, frame-to-frame change in 8-bit levels),
with the unit of every result field.
"""

from vaestudy.measure.artifacts import INJECTIONS, inject_flicker, inject_seam
from vaestudy.measure.metrics import (
    FLOW_METHODS,
    adjacent_ssim,
    as_frames,
    boundary_spike_ratio,
    chunk_boundaries,
    error_by_distance,
    error_map,
    flicker_report,
    frame_differences,
    high_frequency_share,
    lpips_status,
    luma,
    optical_flow,
    seam_band_psnr,
    seam_score,
    temporal_flickering_score,
    temporal_spectrum,
    video_psnr,
    video_ssim,
    warping_error,
)
from vaestudy.measure.oracle import (
    DATA_RANGE,
    ONE_8BIT_LEVEL,
    compare,
    error_by_seam_distance,
    psnr,
    seam_concentration,
    seam_distance_map,
)
from vaestudy.measure.probe import minimal_overlap, receptive_field
from vaestudy.measure.units import (
    COUNT,
    DB,
    DECODED,
    FIELD_UNITS,
    FLAG,
    LEVELS,
    LEVELS_PER_UNIT,
    PIXELS,
    RATIO,
    SCORE01,
    SHARE,
    SSIM,
    unit,
)
