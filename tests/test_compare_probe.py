import math

import pytest
import torch

from conftest import latent_for
from vaestudy.measure.oracle import (
    compare,
    error_by_seam_distance,
    psnr,
    seam_distance_map,
)
from vaestudy.measure.probe import minimal_overlap, receptive_field


def test_psnr_matches_definition_and_identity_is_infinite():
    a = torch.zeros(1, 3, 2, 4, 4)
    b = a + 0.02
    assert psnr(a, a) == math.inf
    assert psnr(a, b) == pytest.approx(10 * math.log10(4 / 0.02**2))


def test_seam_distance_and_bands_locate_an_injected_seam():
    assert seam_distance_map(4, 6, [2.0], [])[:, 0].tolist() == [1.5, 0.5, 0.5, 1.5]
    ref = torch.zeros(1, 3, 1, 32, 32)
    test = ref.clone()
    test[..., :, 15:17] += 0.5  # a seam along x = 16
    bands = error_by_seam_distance(ref, test, seams_x=[16.0], band=2)
    assert bands[0]["mean_abs"] > 0 and all(b["mean_abs"] == 0 for b in bands[1:])
    c = compare(ref, test, seams_x=[16.0])
    assert c["max_abs"] == pytest.approx(0.5) and not c["within_8bit_level"]
    with pytest.raises(ValueError, match="shapes differ"):
        compare(ref, test[:, :, :, :8])


def test_receptive_field_probe_on_a_causal_decoder(tiny):
    r = receptive_field(tiny("wan2.1"), (3, 16, 16))
    assert 1 <= r["spatial_radius"] <= 8 and r["derived_overlap"] == 2 * r["spatial_radius"]
    assert sum(r["spatial_profile"]) == pytest.approx(1.0)
    assert len(r["temporal_profile"]) == 3
    with pytest.raises(ValueError, match="share="):
        receptive_field(tiny("wan2.1"), (1, 8, 8), share=0)


def test_minimal_overlap_sweep_finds_exactness_for_a_local_decoder(tiny):
    """With a loose tolerance the sweep stops at the first overlap that meets it."""
    vae = tiny("wan2.1")
    z = latent_for(vae, 1, 8)
    out = minimal_overlap(vae, z, count=2, tol=10.0)
    assert out["minimal_overlap"] == 0 and len(out["sweep"]) == 1
    strict = minimal_overlap(vae, z, count=2, tol=0.0, overlaps=[0, 2, 40])
    assert strict["minimal_overlap"] is None
    assert [r["tile"] for r in strict["sweep"]] == [(4, 4), (5, 5)]  # overlap 40 cannot be tiled: sweep stops
