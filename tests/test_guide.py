"""The study guide's helpers: the claims table, verdicts, compression arithmetic, stage profile, the ready-to-run
experiments."""

import ast
import importlib
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest
import torch

from vaestudy import guide as G
from vaestudy.cli import build_parser
from vaestudy.guide import sources, study, summary
from vaestudy.registry import FAMILIES, ROLES, exemplar
from vaestudy.registry.load import load_vae

claims_module = importlib.import_module("vaestudy.guide.claims")  # the package's `claims` is the function
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"  # the source notes, beside the checkout when present


def _table() -> dict:
    return tomllib.loads(resources.files("vaestudy.guide").joinpath(sources.CLAIMS_TABLE_FILE).read_text("utf-8"))


def test_claims_table_parses_and_every_row_cites_a_source_file_and_a_registry_family():
    table = _table()
    files = {code: v["file"] for code, v in table["sources"].items()}
    assert {c for c in files if c != "anchors"} == {"000", "001", "002", "003", "004"}
    for code, name in files.items():  # each code is the prefix of its seed note's file name
        assert (code, name) == ("anchors", "FINDINGS.md") or re.fullmatch(rf"{code}_[0-9a-f]{{16}}\.txt", name), name
        if SEEDS.is_dir() and code != "anchors":
            assert (SEEDS / name).is_file(), name
    rows = table["claim"]
    assert len({r["key"] for r in rows}) == len(rows)  # keys are unique
    for r in rows:
        assert r["source"] in files, r
        assert r.get("family") is None or r["family"] in FAMILIES, r
    # the rows that concern a family are the ones a family is quoted for: the source figures that name one
    assert {r["family"] for r in rows if "family" in r} >= {"wan2.1", "cogvideox", "ltx-video"}
    assert list(sources.SOURCE_CLAIMS) == [r["key"] for r in rows]  # the loader keeps the table's order


# how the source notes write a family's name, for the check below (tests may name families)
_QUOTED = {r"\bWan\b": "wan2.1", r"CogVideoX": "cogvideox", r"LTX": "ltx-video", r"Hunyuan": "hunyuanvideo",
           r"Mochi": "mochi"}


def test_a_claim_that_names_a_family_says_which_registry_family_it_concerns():
    for c in sources.SOURCE_CLAIMS.values():
        for pattern, family in _QUOTED.items():
            if re.search(pattern, c.claim):
                assert c.family == family, (c.key, c.claim)


def test_claims_computes_every_row_of_the_table_once_in_its_order():
    tree = ast.parse(Path(claims_module.__file__).read_text())
    calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "_claim"
                    and n.args and isinstance(n.args[0], ast.Constant)), key=lambda n: (n.lineno, n.col_offset))
    keys = [n.args[0].value for n in calls]  # in source order
    # one call per key, except the timing row, which has a second wording when FAST=False measures 3 repeats
    assert list(dict.fromkeys(keys)) == list(sources.SOURCE_CLAIMS)
    assert [k for k in keys if keys.count(k) > 1] == ["tiled-slower", "tiled-slower"]


@pytest.mark.parametrize("change, match", [
    ('source = "000"', "source='999' is not in"),
    ('family = "wan2.1"', "family='nosuch' is not a registry family"),
])
def test_a_bad_claims_row_is_refused(change, match):
    text = resources.files("vaestudy.guide").joinpath(sources.CLAIMS_TABLE_FILE).read_text("utf-8")
    bad = text.replace(change, change.replace('"000"', '"999"').replace('"wan2.1"', '"nosuch"'), 1)
    with pytest.raises(ValueError, match=match):
        sources.read_claims_table(bad)


def test_a_repeated_or_unknown_claim_key_is_refused():
    text = resources.files("vaestudy.guide").joinpath(sources.CLAIMS_TABLE_FILE).read_text("utf-8")
    with pytest.raises(ValueError, match="appears twice"):
        sources.read_claims_table(text + '\n[[claim]]\nkey = "cached-stream"\nsource = "000"\nclaim = "again"\n')
    with pytest.raises(ValueError, match="key='nosuch' is not in claims.toml"):
        sources.source_claim("nosuch")


def test_the_study_picks_its_families_by_role_from_the_registry():
    assert study.COST_FAMILIES == (study.STREAMING_FAMILY, study.GROUPNORM_FAMILY, exemplar("temporal windows").name)
    assert FAMILIES[study.STREAMING_FAMILY].streams_exactly
    g = FAMILIES[study.GROUPNORM_FAMILY]
    assert g.streamable and g.norm == "group" and not g.streams_exactly
    for role, fits in ROLES.items():  # the exemplar is the first family in registry order that fits its role
        assert exemplar(role) == next(f for f in FAMILIES.values() if fits(f))
    with pytest.raises(ValueError, match="role='fastest'"):
        exemplar("fastest")


def test_verdicts_are_checked():
    assert claims_module._row("000", "c", "m", "agrees")["verdict"] == "agrees"
    with pytest.raises(ValueError, match="verdict='maybe'"):
        claims_module._row("000", "c", "m", "maybe")


def test_verdict_counts_cover_every_row():
    row = claims_module._row
    rows = [row("000", "a", "", "agrees"), row("002", "b", "", "disagrees"), row("004", "c", "", "agrees")]
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
    rows = G.experiments(parser=build_parser())
    assert len(rows) == len(G.EXPERIMENTS) and all(r["command"].startswith("vaestudy ") for r in rows)


def test_a_broken_experiment_is_reported(monkeypatch):
    monkeypatch.setattr(summary, "EXPERIMENTS", [("bad", "vaestudy bench --model nosuch", "")])
    with pytest.raises(ValueError, match="does not parse"):
        G.experiments(parser=build_parser())


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
