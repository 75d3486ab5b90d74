"""The family atlas (notebook 09): registry facts per family, and a measured row that says which weights it used."""

from __future__ import annotations

import pytest

from vaestudy.decode.common import check_own_tiles, decoder_attention_classes, fit_own_tiles, own_tile_grid
from vaestudy.guide import atlas as A
from vaestudy.guide.claims import raw_compression
from vaestudy.registry import FAMILIES, exemplar, load_vae


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
    assert row["attention"] == decoder_attention_classes(load_vae(name, "tiny"))  # read from the loaded decoder


def test_frame_global_ops_are_the_attention_classes_and_a_group_norm():
    assert A.frame_global_ops({"attention": ["WanAttentionBlock"], "norm": "rms"}) == ["WanAttentionBlock"]
    assert A.frame_global_ops({"attention": [], "norm": "group"}) == ["GroupNorm"]
    assert A.frame_global_ops({"attention": [], "norm": "rms"}) == []


def test_the_exactness_word_follows_the_threshold():
    row = {"stream": "chunked-window", "max_abs": 1e-3}
    assert "differs" in A.exactness_word(row, 1e-4) and "same decode" in A.exactness_word(row, 1e-2)
    assert A.exactness_word({"stream": "chunked-window", "error": "x"}, 1e-4) == "no valid chunk"


def test_sizes_come_from_the_family_rules():
    for f in FAMILIES.values():
        for n in range(1, 12):
            k = f.latent_frames_at_least(n)
            f.check_latent_frames(k)  # valid
            assert k >= n and not any(m >= n and _valid(f, m) for m in range(n, k))  # and the smallest such


def _valid(f, m):
    try:
        f.check_latent_frames(m)
        return True
    except ValueError:
        return False


def test_a_tiles_only_latent_is_fitted_to_its_grid(tiny):
    tiles_only = next(n for n, f in FAMILIES.items() if f.decode_tiling == "only")
    vae = tiny(tiles_only)
    fitted = fit_own_tiles(vae, (1, 1, 1))
    check_own_tiles(vae, fitted)  # on the grid
    assert fitted == tuple(k for k, _ in own_tile_grid(vae))  # the smallest: one tile
    other = tiny(exemplar("exact stream").name)
    assert fit_own_tiles(other, (3, 5, 7)) == (3, 5, 7)


def test_zero_initialised_weights_are_filled_for_the_measurements_and_named():
    """MiniMax-H3's tiny config initialises its ViT blocks' residual scales to zero: every block is the identity, so
    its overlapping windows would equal its own decode and its receptive field would be 0. The atlas measures with
    those weights set to 1 and names them; then the windows differ from decode() and the probe reaches beyond 0."""
    from vaestudy.measure.probe import zero_weights

    name = "minimax-h3"
    zeros = zero_weights(load_vae(name, "tiny"))
    assert any("scale1" in n for n in zeros)
    row = A.measured_row(name, A.AtlasSize(latent_frames=7, latent_side=4), probe_sizes=(8,))
    assert row["filled"] == zeros and row["stream"] == "chunked-window"
    assert row["max_abs"] > 1e-4 and row["rf_99"] > 0
