"""The family atlas (notebook 09): registry facts per family, and a measured row that says which weights it used."""

from __future__ import annotations

import pytest

from vaestudy.guide import atlas as A
from vaestudy.guide.claims import raw_compression
from vaestudy.registry import FAMILIES, exemplar


def test_static_rows_cover_every_family_with_counted_costs():
    rows = [A.static_row(f) for f in FAMILIES.values()]
    assert [r["family"] for r in rows] == list(FAMILIES)
    for r in rows:
        f = FAMILIES[r["family"]]
        assert r["raw_ratio"] == raw_compression(f.name)  # the guide's count, stated once
        assert r["latent_bytes_per_px_frame"] == pytest.approx(2 * f.latent_channels / (f.spatial_compression ** 2 * f.temporal_compression))
        assert r["params"] > r["decoder_params"] > 0 and r["mflops_per_px"] > 0


@pytest.mark.parametrize("kwargs, match", [({"names": ["nosuch"]}, "nosuch"), ({"weights": "heavy"}, "heavy")])
def test_bad_input_is_refused_before_any_decode(monkeypatch, kwargs, match):
    monkeypatch.setattr(A, "measured_row", lambda *a, **k: pytest.fail("decoded before refusing"))
    with pytest.raises(ValueError, match=match):
        A.family_atlas(**kwargs)


def test_pretrained_weights_missing_here_fall_back_to_tiny_and_the_row_says_so(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    name = exemplar("exact stream").name
    row = A.measured_row(name, A.AtlasSize(latent_frames=2, latent_side=2), weights="pretrained", probe_sizes=(4,))
    assert row["weights"] == "tiny"
    assert A.exactness_word(row, 1e-4).startswith("cache: same decode")  # its stream is its own decode's arithmetic


def test_the_exactness_word_follows_the_threshold():
    row = {"stream": "chunked-window", "max_abs": 1e-3}
    assert "differs" in A.exactness_word(row, 1e-4) and "same decode" in A.exactness_word(row, 1e-2)
    assert A.exactness_word({"stream": "chunked-window", "error": "x"}, 1e-4) == "no valid chunk"
