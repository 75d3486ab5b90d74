"""Seam and flicker metrics validated on known ground truth: a real clip with injected artefacts."""

import math

import numpy as np
import pytest
import torch

from vaestudy.data import clip_info, load_clip, still_with_camera_path
from vaestudy.measure import artifacts as A
from vaestudy.measure import metrics as M

SEAMS = ([24.0], [24.0, 40.0])  # a known grid on a 48 x 64 crop
BOUNDARIES = [5, 9, 13]  # chunks of 5, 4, 4, 4 pixel frames
AMPS = (0.02, 0.05, 0.1, 0.2)


@pytest.fixture(scope="module")
def clip():
    return load_clip("carphone", 17, (48, 64))


@pytest.fixture(scope="module")
def fps():
    return clip_info("carphone")["fps"]


def increasing(values, slack=0.0):
    return all(b > a - slack for a, b in zip(values, values[1:]))


# ---- seams --------------------------------------------------------------------------------------

def test_seam_score_flags_and_ranks_injected_grid(clip):
    clean = M.seam_score(clip, *SEAMS)["score"]
    assert 0.7 < clean < 1.5, clean  # real content: no grid
    scores = [M.seam_score(A.inject_seam(clip, *SEAMS, a), *SEAMS)["score"] for a in AMPS]
    assert increasing(scores) and scores[-1] > 2 * clean, scores
    # the score looks at the grid it is told about: the same injection scored on other lines stays clean
    off_grid = M.seam_score(A.inject_seam(clip, *SEAMS, 0.2), [12.0], [12.0, 52.0])["score"]
    assert off_grid < 1.5, off_grid


def test_seam_band_psnr_separates_band_from_interior(clip):
    rows = [M.seam_band_psnr(clip, A.inject_seam(clip, *SEAMS, a, width=4.0), *SEAMS, band=4) for a in AMPS]
    assert all(r["gap_db"] > 3 for r in rows), rows  # error gathers at the seams
    assert increasing([-r["seam_db"] for r in rows])  # larger amplitude, lower seam-band PSNR
    same = M.seam_band_psnr(clip, clip, *SEAMS)
    assert math.isinf(same["seam_db"]) and math.isinf(same["interior_db"])
    assert same["gap_db"] == 0.0  # identical videos: no error gathers anywhere (was inf - inf = NaN)
    for r in rows:  # finite parts: the gap is the difference of the two PSNRs
        assert r["gap_db"] == pytest.approx(r["interior_db"] - r["seam_db"], abs=1e-9)
    only_seam = clip.clone()
    only_seam[..., 30:34, :] += 0.1  # a band on the seam y=32 only: the interior is untouched
    assert M.seam_band_psnr(clip, only_seam, [32.0], [], band=4)["gap_db"] == math.inf
    # a flat offset per tile (width=inf) is no band: both PSNRs agree
    flat = M.seam_band_psnr(clip, A.inject_seam(clip, *SEAMS, 0.05, width=math.inf), *SEAMS)
    assert abs(flat["gap_db"]) < 1.0, flat


def test_error_by_distance_reuses_compare_and_decays(clip):
    bands = M.error_by_distance(clip, A.inject_seam(clip, *SEAMS, 0.1, width=4.0), *SEAMS, band=4)
    means = [b["mean_abs"] for b in bands]
    assert means[0] == max(means) and means[0] > 3 * means[-1]
    emap = M.error_map(clip, A.inject_seam(clip, *SEAMS, 0.1, width=4.0))
    assert emap.shape == (48, 64) and emap[:, 23:25].mean() > 3 * emap[:, 30:34].mean()


# ---- flicker --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["brightness", "texture"])
def test_frame_difference_spike_flags_and_ranks_jumps(clip, kind):
    clean = M.boundary_spike_ratio(M.frame_differences(clip), BOUNDARIES)["ratio"]
    assert 0.5 < clean < 1.5, clean
    ratios = [M.boundary_spike_ratio(M.frame_differences(A.inject_flicker(clip, BOUNDARIES, a, kind)),
                                     BOUNDARIES)["ratio"] for a in AMPS]
    assert increasing(ratios) and ratios[-1] > 2 * clean, ratios
    # the spike sits exactly on the injected transitions
    mafd = M.frame_differences(A.inject_flicker(clip, BOUNDARIES, 0.2, kind))
    assert set(np.argsort(mafd)[-3:]) == {b - 1 for b in BOUNDARIES}


def test_vbench_score_and_adjacent_ssim_drop_with_flicker(clip):
    vb = [M.temporal_flickering_score(A.inject_flicker(clip, BOUNDARIES, a)) for a in (0.0, *AMPS)]
    assert increasing([-v for v in vb]) and 0.9 < vb[0] <= 1.0
    ss = [M.adjacent_ssim(A.inject_flicker(clip, BOUNDARIES, a, "texture")).mean() for a in (0.0, *AMPS)]
    assert increasing([-s for s in ss]), ss


def test_high_frequency_share_flags_fast_flicker(clip, fps):
    every2 = list(range(2, 17, 2))  # alternation with a 4-frame period: fps/4 ~ 7.5 Hz, above the 6 Hz cut-off
    clean = M.high_frequency_share(clip, fps)
    shares = [M.high_frequency_share(A.inject_flicker(clip, every2, a), fps) for a in AMPS]
    assert increasing(shares) and shares[-1] > clean + 0.2, (clean, shares)
    f, p = M.temporal_spectrum(A.inject_flicker(clip, every2, 0.2), fps)
    assert abs(f[np.argmax(p[1:]) + 1] - fps / 4) < fps / 17  # the peak lands on the injected frequency


def test_high_frequency_share_misses_slow_chunk_alternation(clip, fps):
    # 4-frame chunks alternating: fundamental at fps/8 ~ 3.7 Hz, below 6 Hz. The share does not rise:
    # a frequency cut-off is the wrong detector for slow chunk-level flicker (the notebooks say so).
    clean = M.high_frequency_share(clip, fps)
    assert M.high_frequency_share(A.inject_flicker(clip, BOUNDARIES, 0.1), fps) <= clean + 0.02


def test_warping_error_on_known_shift():
    video, offsets = still_with_camera_path("astronaut", 5, (48, 48), (0.0, 2.0))
    y = M.luma(M.as_frames(video)).astype(np.float32)
    flow = M.optical_flow(y[1], y[0])
    assert abs(np.median(flow[1]) - 2.0) < 0.05 and abs(np.median(flow[0])) < 0.05  # the true shift
    true = [np.stack([np.zeros((48, 48)), np.full((48, 48), 2.0)])] * 4
    assert M.warping_error(video, flows=true)["mean"] < 1e-6  # whole-pixel pan: exact with the true flow
    est = M.warping_error(video)
    plain = M.frame_differences(video).mean()
    assert est["mean"] < 0.1 * plain, (est, plain)  # flow compensation removes the motion
    assert 0.8 < est["kept_share"] < 1.0  # the strip entering the frame is masked as newly visible
    flick = M.warping_error(A.inject_flicker(video, [2, 3, 4], 0.1, "texture"))
    assert flick["mean"] > 5 * est["mean"]


def test_flicker_report_and_boundaries(clip, fps):
    assert M.chunk_boundaries([5, 4, 4, 4]) == BOUNDARIES and M.chunk_boundaries([1, 4, 4]) == [1, 5]
    r = M.flicker_report(clip[:, :9], [5], fps, warp=False)
    assert {"mafd_mean", "vbench_flicker", "hf_share", "adjacent_ssim_mean", "spike_ratio"} <= set(r)


def test_bad_input_names_the_parameter(clip):
    with pytest.raises(ValueError, match="batch"):
        M.frame_differences(torch.zeros(2, 3, 4, 8, 8))
    with pytest.raises(ValueError, match="cutoff_hz"):
        M.high_frequency_share(clip, 25.0, cutoff_hz=20.0)
    with pytest.raises(ValueError, match="boundaries"):
        A.inject_flicker(clip, [0], 0.1)
    with pytest.raises(ValueError, match="method"):
        M.optical_flow(np.zeros((8, 8)), np.zeros((8, 8)), method="raft")
    assert "LPIPS" in M.lpips_status()


def test_seam_score_on_the_latent_grid_ignores_a_periodic_decoder_grid(clip):
    # a decoder's own faint grid every 8 px inflates the neighbour-based score but not the grid-phase one
    grid = A.inject_seam(clip, [8.0, 16.0, 24.0, 32.0, 40.0], [8.0, 16.0, 24.0, 32.0, 40.0, 48.0, 56.0], 0.1, width=1.0)
    assert M.seam_score(grid, *SEAMS)["score"] > 1.5
    assert M.seam_score(grid, *SEAMS, period=8)["score"] < 1.5
    clean = M.seam_score(clip, *SEAMS, period=8)["score"]
    scores = [M.seam_score(A.inject_seam(clip, *SEAMS, a), *SEAMS, period=8)["score"] for a in AMPS]
    assert increasing(scores) and scores[-1] > 3 * clean, (clean, scores)
    with pytest.raises(ValueError, match="period"):
        M.seam_score(clip, *SEAMS, period=1)


def test_seam_score_is_one_ratio_of_sums_for_the_clip_its_axes_and_its_frames():
    """Frame 0 shows its seam 36x its neighbours' energy on little energy, frame 1 4x on much more: the clip's score
    pools the energies (0.0136 / 0.0026 = 5.23), it is not the mean of the frames' ratios (20)."""
    x = torch.arange(16, dtype=torch.float64)
    frames = [slope * x + step * (x >= 8) for slope, step in ((0.01, 0.05), (0.05, 0.05))]
    gray = torch.stack([f.expand(16, 16) for f in frames])  # (T, H, W): a ramp along x with a step at x = 8
    video = gray[None].expand(3, -1, -1, -1)  # r = g = b, so luma is the gray value
    s = M.seam_score(video, seams_x=[8], context=2)
    assert s["per_frame"] == pytest.approx([36.0, 4.0], rel=1e-6)  # luma weights sum to 1 within float error
    assert s["score"] == pytest.approx(0.0136 / 0.0026, rel=1e-6) and s["score"] == s["score_x"]
    assert math.isnan(s["score_y"]) and s["lines"] == 1


def test_every_result_field_has_a_unit():
    """The measure layer's one unit convention covers every field its measurements return."""
    from vaestudy.measure import oracle
    from vaestudy.measure.units import FIELD_UNITS, unit

    g = torch.Generator().manual_seed(0)
    ref = torch.rand(1, 3, 5, 16, 16, generator=g) * 2 - 1
    test = (ref + 0.02 * torch.randn(ref.shape, generator=g)).clamp(-1, 1)
    fields = set(oracle.compare(ref, test, seams_x=[8]))
    fields |= {k for b in oracle.error_by_seam_distance(ref, test, seams_x=[8]) for k in b}
    fields |= set(M.seam_band_psnr(ref, test, seams_x=[8])) | set(M.seam_score(test, seams_x=[8]))
    fields |= set(M.boundary_spike_ratio(M.frame_differences(test), [2]))
    fields |= set(M.flicker_report(test, [2], 25.0, warp=True))
    missing = sorted(f for f in fields if f not in FIELD_UNITS)
    assert not missing, missing
    with pytest.raises(ValueError, match="field='speed'"):
        unit("speed")
