"""The study guide's helpers: verdicts, compression arithmetic, stage profile, the ready-to-run experiments."""

import pytest
import torch

from vaestudy import guide as G
from vaestudy.registry.load import load_vae


def test_verdicts_are_checked():
    assert G._row("000", "c", "m", "agrees")["verdict"] == "agrees"
    with pytest.raises(ValueError, match="verdict='maybe'"):
        G._row("000", "c", "m", "maybe")


def test_verdict_counts_cover_every_row():
    rows = [G._row("000", "a", "", "agrees"), G._row("002", "b", "", "disagrees"), G._row("004", "c", "", "agrees")]
    assert G.verdict_counts(rows) == {"agrees": 2, "disagrees": 1, "cannot test here": 0}


@pytest.mark.parametrize("family, expected", [("wan2.1", 48), ("cogvideox", 48), ("ltx-video", 192), ("mochi", 96)])
def test_raw_compression_counts_latent_channels(family, expected):
    # 004 lists CogVideoX at 192x: that figure leaves out the 16 latent channels
    assert G.raw_compression(family) == pytest.approx(expected)


def test_study_rejects_unknown_weights_before_any_work():
    with pytest.raises(ValueError, match="quality_weights='hub'"):
        G.Study(quality_weights="hub")
    with pytest.raises(ValueError, match="cost_weights='embedded'"):
        G.Study(cost_weights="embedded")


def test_stage_profile_accounts_for_the_whole_decode():
    torch.manual_seed(0)
    vae = load_vae("wan2.1", "tiny", seed=0)
    z = torch.randn(1, 16, 3, 4, 4)
    rows = G.stage_profile(vae, z)
    names = [r["stage"] for r in rows]
    assert names[-1] == "other" and any(n.startswith("up_blocks") for n in names)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0, abs=1e-6)
    ups = [r for r in rows if r["stage"].startswith("up_blocks")]
    # activations grow toward the output: the last up block returns the largest tensor
    assert ups[-1]["max_out_bytes"] > ups[0]["max_out_bytes"]
    # Wan's decoder runs once per latent frame
    assert all(r["calls"] == 3 for r in rows if r["stage"] != "other")
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in vae.decoder.modules())  # hooks removed


def test_experiments_parse_with_the_real_cli():
    rows = G.experiments()
    assert len(rows) == len(G.EXPERIMENTS) and all(r["command"].startswith("vaestudy ") for r in rows)


def test_a_broken_experiment_is_reported(monkeypatch):
    monkeypatch.setattr(G, "EXPERIMENTS", [("bad", "vaestudy bench --model nosuch", "")])
    with pytest.raises(ValueError, match="does not parse"):
        G.experiments()


def test_slow_conv3d_demo_shape():
    d = G.slow_conv3d_demo("cpu", repeats=1)
    a, b = d["rows"]
    assert a["n_c_t_h"] <= 20480 < b["n_c_t_h"]  # one height on each side of the slow-path rule
    assert d["ratio"] == pytest.approx(a["ns_per_voxel"] / b["ns_per_voxel"])  # slow path's time per voxel over fast's
    assert "skipped" in G.slow_conv3d_demo("cuda")


def test_markdown_table_escapes_pipes():
    t = G.markdown_table([{"a": "x|y", "b": 1}])
    assert "x\\|y" in t and t.splitlines()[1] == "|---|---|"


@pytest.mark.parametrize("gain", [0.02, 0.08, 0.15])
def test_critical_share_inverts_the_overlap_model(gain):
    from vaestudy import pipelines as P

    c = G.critical_share_for_gain(gain)
    assert 0 < c < 1
    assert P.scope_ceiling(critical=c)["gain"] == pytest.approx(gain, abs=1e-6)


def test_critical_share_is_clipped_outside_the_model():
    assert G.critical_share_for_gain(0.5) == 0.0  # more than overlap can ever give
    assert G.critical_share_for_gain(-0.1) == 1.0


def test_stage_profile_gives_flops_and_flop_rate_per_stage(tiny):
    from torch.utils.flop_counter import FlopCounterMode

    from conftest import latent_for
    from vaestudy.decode import decode_full

    vae = tiny("wan2.1")
    z = latent_for(vae, 2, 4)
    with FlopCounterMode(display=False) as fc:
        decode_full(vae, z)
    rows = G.stage_profile(vae, z, peak_flops=1e18)
    assert sum(r["flops"] for r in rows) == fc.get_total_flops()  # every FLOP of the decode sits in one row
    ups = [r for r in rows if r["stage"].startswith("up_blocks")]
    assert ups and all(r["flops"] > 0 for r in ups)
    for r in rows:
        if r["flop_s"]:
            assert r["flop_s"] == pytest.approx(r["flops"] / r["seconds"])
            assert r["fraction_of_peak"] == pytest.approx(r["flop_s"] / 1e18) and r["peak_error"] is None
    too_low = G.stage_profile(vae, z, peak_flops=1.0)  # a "peak" every stage beats: an error, never a fraction
    assert all(r["fraction_of_peak"] is None for r in too_low)
    assert any(r["peak_error"] and "exceeds the measured peak" in r["peak_error"] for r in too_low)
