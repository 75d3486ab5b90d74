"""The study guide's helpers: the claims table, verdicts, compression arithmetic, stage profile, the ready-to-run
experiments."""

import importlib
import math
import re
import tomllib
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from vaestudy import guide as G
from vaestudy.bench.reference import reference_names
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


def _stub_study(**change) -> SimpleNamespace:
    """The fields of a Study that claims() reads, shaped like a FAST CPU run (no model is loaded): the rows'
    logic can then be tested in milliseconds, and a number moved across a threshold."""
    fam = lambda key: sources.source_claim(key).family
    runs = lambda m: {"median": m, "min": m, "max": m}
    costs = {(fam("tiled-slower"), "full"): {"wall_s": runs(1.0)}, (fam("tiled-slower"), "tiled"): {"wall_s": runs(2.3)}}
    st = SimpleNamespace(
        device="cpu", repeats=1, cost_size=(32, 32),
        cache_demo={"cache_max": 0.0, "naive_max": 0.49, "cache_first_s": 0.07, "full_s": 1.0},
        norms=[{"family": study.GROUPNORM_FAMILY, "what": "chunks of 2 latent frames (cache)", "setting": "own norm",
                "max_abs": 0.03}],
        family_costs={fam("vae-only-memory"): {"flops_per_px": 8.5e6, "parameters": 127e6}},
        overlap_measured={"contention": 0.55, "gain": 0.35, "bound_gain": 0.91},
        bpp=[{"height": 144, "bpp": 0.083}, {"height": 272, "bpp": 0.060}],
        latent_pack=[SimpleNamespace(method="zstd", nbytes=928, raw_nbytes=1000)],
        flicker=[{"strategy": "chunked-naive", "hf_share": 0.083, "spike_ratio": 2.5},
                 {"strategy": "chunked", "hf_share": 0.057, "spike_ratio": 1.3},
                 {"strategy": "source clip", "adjacent_ssim_mean": 0.79, "spike_ratio": 0.8},
                 {"strategy": "chunked-window (pixel grid)", "spike_ratio": 1.43},
                 {"strategy": "chunked-window (latent grid)", "spike_ratio": 1.54}],
        halo_split={"halos": (2, 3), 2: {"psnr_db": 53.2, "max_abs": 0.079}, 3: {"psnr_db": 69.2, "max_abs": 0.01}},
        exact_split={"model": study.STREAMING_FAMILY, "world": 2, "latent_shape": [1, 16, 3, 8, 8], "config": {"crop_halo": 2},
                     "rows": [{"method": "exact halo exchange", "max_abs": 0.0, "bytes_measured": {"halo": 4096}},
                              {"method": "halo-and-crop", "max_abs": 0.08, "bytes_measured": {"output": 8192}}]},
        receptive={"rf": {"radii": {0.5: 2, 0.9: 4, 0.99: 5}, "latent_size": (3, 12, 12)}},
        decode_bytes_per_px={"family": fam("decode-bytes-per-pixel"), "bytes_per_pixel_frame": 237.0,
                             "dtype": "float32"},
        cost=lambda family, strategy: costs[(family, strategy)])
    for k, v in change.items():
        setattr(st, k, v)
    return st


def _rows(**change) -> dict[str, dict]:
    return {r["key"]: r for r in G.claims(_stub_study(**change))}


def test_claims_computes_every_row_of_the_table_once_in_its_order():
    rows = G.claims(_stub_study())
    assert [r["key"] for r in rows] == list(sources.SOURCE_CLAIMS)
    assert all(r["claim"] == sources.source_claim(r["key"]).claim for r in rows)


def test_every_row_has_a_valid_evidence_class():
    for c in sources.SOURCE_CLAIMS.values():
        assert c.evidence in sources.EVIDENCE, c
        assert (c.reference is not None) == (c.evidence == "gpu-reference"), c
    rows = G.claims(_stub_study())
    assert {r["evidence"] for r in rows} <= set(sources.EVIDENCE)
    assert all(r["class"] == sources.EVIDENCE[r["evidence"]] for r in rows)


def test_re_derived_rows_carry_no_measurement():
    rows = [r for r in G.claims(_stub_study()) if r["evidence"] == "re-derived"]
    assert rows
    for r in rows:
        assert r["measured"] is None and r["reference"] is None and not r["timed"], r["key"]
        assert math.isfinite(r["derived"]), r["key"]


def test_measured_rows_that_judge_carry_a_measured_number():
    for r in G.claims(_stub_study()):
        if r["evidence"] in ("measured-here", "gpu-reference") and r["verdict"] != "cannot test here":
            assert math.isfinite(r["measured"]) and r["derived"] is None, r["key"]
        if r["evidence"] == "not-measured":
            assert r["verdict"] == "cannot test here" and r["measured"] is None, r["key"]


def test_gpu_rows_name_their_reference_and_are_labelled_as_not_this_machine():
    rows = [r for r in G.claims(_stub_study()) if r["evidence"] == "gpu-reference"]
    # 000's chunk time and 001's VAE-only memory are judged from the records that name them
    assert {"decode-per-chunk", "vae-only-memory", "sglang-baseline"} <= {r["key"] for r in rows}
    for r in rows:
        assert r["reference"] == sources.source_claim(r["key"]).reference
        assert r["reference"] in reference_names(), r  # shipped in reference/
        assert r["reference"] in r["found"] and "not this machine" in r["found"], r["found"]
        assert r["verdict"] != "cannot test here" and not r["timed"], r["key"]  # fixed records: stable verdicts


def test_gpu_rows_without_their_reference_cannot_be_tested(monkeypatch):
    def missing(name):
        raise ValueError(f"reference={name!r} is not shipped")

    monkeypatch.setattr(claims_module, "load_reference", missing)
    for r in G.claims(_stub_study()):
        if r["evidence"] == "gpu-reference":
            assert r["verdict"] == "cannot test here" and r["reference"] in r["found"], r


@pytest.mark.parametrize("row, match", [
    ({"evidence": "re-derived", "measured": 1.0, "derived": 1.0}, "carries no measurement"),
    ({"evidence": "re-derived", "derived": None}, "carries the number it re-derived"),
    ({"evidence": "measured-here", "measured": None}, "carries a measured number"),
    ({"evidence": "measured-here", "measured": math.nan}, "carries a measured number"),
    ({"evidence": "gpu-reference", "measured": 1.0, "reference": None}, "names its reference"),
    ({"evidence": "gpu-reference", "measured": 1.0, "reference": "h200", "found": "no name"}, "names its reference"),
    ({"evidence": "not-measured"}, "carries no number and no verdict"),
    ({"evidence": "guessed"}, "evidence='guessed'"),
])
def test_a_row_whose_evidence_does_not_hold_is_refused(row, match):
    base = {"key": "k", "verdict": "agrees", "measured": None, "derived": None, "reference": None, "found": "x"}
    with pytest.raises(ValueError, match=match):
        claims_module.check_row({**base, **row})


@pytest.mark.parametrize("change, match", [
    ('source = "000"', "source='999' is not in"),
    ('family = "wan2.1"', "family='nosuch' is not a registry family"),
])
def test_a_bad_claims_row_is_refused(change, match):
    text = resources.files("vaestudy.guide").joinpath(sources.CLAIMS_TABLE_FILE).read_text("utf-8")
    bad = text.replace(change, change.replace('"000"', '"999"').replace('"wan2.1"', '"nosuch"'), 1)
    with pytest.raises(ValueError, match=match):
        sources.read_claims_table(bad)


@pytest.mark.parametrize("change, to, match", [
    ('evidence = "re-derived"', 'evidence = "guessed"', "evidence='guessed'"),
    ('evidence = "measured-here"', 'evidence = "measured-here"\nreference = "h200-2026-11-29"', "only such a row"),
    ('reference = "h200-2026-11-29"', '', "names its reference folder"),
    (', short = "topic page"', '', "lacks \\['short'\\]"),
])
def test_a_row_without_a_valid_evidence_class_is_refused(change, to, match):
    text = resources.files("vaestudy.guide").joinpath(sources.CLAIMS_TABLE_FILE).read_text("utf-8")
    assert change in text
    with pytest.raises(ValueError, match=match):
        sources.read_claims_table(text.replace(change, to, 1))


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
    assert claims_module.make_row("storage-ratio", "m", ("agrees", ""), derived=0.88)["verdict"] == "agrees"
    with pytest.raises(ValueError, match="verdict='maybe'"):
        claims_module.make_row("storage-ratio", "m", ("maybe", ""), derived=0.88)


def test_verdict_counts_cover_every_row_per_class():
    rows = G.claims(_stub_study())
    total = G.verdict_counts(rows)
    by = G.verdict_counts(rows, by="evidence")
    assert list(by) == list(sources.EVIDENCE) and sum(total.values()) == len(rows)
    for v in G.VERDICTS:  # the classes partition the rows
        assert sum(c[v] for c in by.values()) == total[v]
    table = claims_module.verdict_table(rows)
    assert [t["class"] for t in table] == [*sources.EVIDENCE.values(), "all"] and table[-1]["rows"] == len(rows)
    with pytest.raises(ValueError, match="by='source'"):
        G.verdict_counts(rows, by="source")


T = claims_module.THRESHOLDS


@pytest.mark.parametrize("judge, below, above", [
    # (the judge at a number just inside its threshold, just outside), each threshold read from THRESHOLDS
    (lambda x: claims_module.judge_close(x, 100.0), 100 * (1 + T["rederived_rel"]) - 1e-6,
     100 * (1 + T["rederived_rel"]) + 1e-6),
    (lambda x: claims_module.judge_close(x, 100.0), 100 * (1 - T["rederived_rel"]) + 1e-6,
     100 * (1 - T["rederived_rel"]) - 1e-6),
    (lambda x: claims_module.judge_factor(x, 0.107), 0.107 * T["gpu_factor"] - 1e-9, 0.107 * T["gpu_factor"] + 1e-9),
    (lambda x: claims_module.judge_factor(x, 0.107), 0.107 / T["gpu_factor"] + 1e-9, 0.107 / T["gpu_factor"] - 1e-9),
    (claims_module.judge_exact, T["exact_abs"] * 0.99, T["exact_abs"]),
    (lambda x: claims_module.judge_below(x, T["far_less_share"]), T["far_less_share"] - 1e-9, T["far_less_share"]),
    (lambda x: claims_module.judge_in_range(x, 350, 750), 350, 349.9),
])
def test_a_verdict_flips_where_its_number_crosses_the_threshold(judge, below, above):
    assert judge(below)[0] == "agrees"
    verdict, why = judge(above)
    assert verdict == "disagrees" and why  # with a reason naming the numbers


def test_slower_needs_runs_apart():
    runs = lambda lo, hi: {"min": lo, "median": (lo + hi) / 2, "max": hi}
    need = int(T["min_repeats"])
    assert claims_module.judge_slower(runs(2, 3), runs(1, 1.5), need)[0] == "agrees"
    assert claims_module.judge_slower(runs(1, 1.5), runs(2, 3), need)[0] == "disagrees"
    assert claims_module.judge_slower(runs(1, 2.5), runs(2, 3), need)[0] == "cannot test here"  # ranges overlap
    assert claims_module.judge_slower(runs(2, 3), runs(1, 1.5), need - 1)[0] == "cannot test here"  # no spread


def test_row_verdicts_follow_their_numbers_across_the_thresholds(monkeypatch):
    demo = {"cache_max": 0.0, "naive_max": 0.49, "cache_first_s": 0.07, "full_s": 1.0}
    assert _rows(cache_demo=demo)["cached-stream"]["verdict"] == "agrees"
    broken = _rows(cache_demo={**demo, "cache_max": 2 * T["exact_abs"]})["cached-stream"]
    assert broken["verdict"] == "disagrees" and "not the same decode" in broken["why"]
    # 000's chunk time against the reference's 118 ms: move the claimed figure across the factor
    steady = _rows()["decode-per-chunk"]["measured"]
    for factor, verdict in ((T["gpu_factor"] * 0.99, "agrees"), (T["gpu_factor"] * 1.01, "disagrees")):
        monkeypatch.setitem(sources.source_claim("decode-per-chunk").figures, "decode_ms_per_chunk",
                            steady * 1e3 / factor)
        assert _rows()["decode-per-chunk"]["verdict"] == verdict, factor
    monkeypatch.undo()
    low = sources.source_claim("adjacent-ssim").figures["low"]
    for ssim, verdict in ((low, "agrees"), (low - 1e-3, "disagrees")):
        flicker = [dict(r) for r in _stub_study().flicker]
        flicker[2]["adjacent_ssim_mean"] = ssim
        assert _rows(flicker=flicker)["adjacent-ssim"]["verdict"] == verdict


def test_overlap_verdict_follows_contention_and_refuses_a_gain_above_the_ideal():
    om = {"gain": 0.5, "bound_gain": 0.9}
    thr = T["hidden_contention"]
    assert _rows(overlap_measured={**om, "contention": thr * 0.9})["overlap-hides-decode"]["verdict"] == "agrees"
    assert _rows(overlap_measured={**om, "contention": thr})["overlap-hides-decode"]["verdict"] == "cannot test here"
    noisy = _rows(overlap_measured={**om, "gain": 0.95, "contention": 0.0})["overlap-hides-decode"]
    assert noisy["verdict"] == "cannot test here" and "exceeds the ideal" in noisy["why"]


def test_reasons_are_computed_not_fixed():
    rows = _rows()
    f = sources.source_claim("cosmos-vs-raw").figures
    cos = rows["cosmos-vs-raw"]
    assert cos["verdict"] == "disagrees" and f"{cos['derived'] / f['vs_raw']:.2f}x the stated {f['vs_raw']}" in cos["why"]
    fc, fam = rows["family-compression"], FAMILIES[sources.source_claim("family-compression").family]
    stated = sources.source_claim("family-compression").figures["compression"]  # the channels that would give it
    assert f"{3 * fam.spatial_compression ** 2 * fam.temporal_compression / stated:.3g} latent channels" in fc["why"]
    assert rows["tiled-slower"]["verdict"] == "cannot test here" and "1 run(s)" in rows["tiled-slower"]["why"]


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

    shares = sources.seed_shares()
    c = G.critical_share_for_gain(gain, **shares)
    assert 0 < c < 1
    assert P.scope_ceiling(**shares, critical=c)["gain"] == pytest.approx(gain, abs=1e-6)


def test_critical_share_is_clipped_outside_the_model():
    shares = sources.seed_shares()
    assert G.critical_share_for_gain(0.5, **shares) == 0.0  # more than overlap can ever give
    assert G.critical_share_for_gain(-0.1, **shares) == 1.0


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


def test_every_threshold_is_stated_once_with_its_rule_in_words():
    rows = claims_module.threshold_rows()
    assert [r["threshold"] for r in rows] == list(T) == list(claims_module.THRESHOLD_RULES)
    for r in rows:  # the rule carries the value it is filled from
        assert "{" not in r["rule"] and r["rule"] == claims_module.THRESHOLD_RULES[r["threshold"]].format(T[r["threshold"]])


def test_reference_provenance_comes_from_the_records_the_rows_read():
    rows = G.claims(_stub_study())
    prov = claims_module.reference_provenance(rows)
    names = dict.fromkeys(r["reference"] for r in rows if r["reference"])
    assert [p["reference"] for p in prov] == [f"reference/{n}/" for n in names]
    for p in prov:  # every value read from the records, the README beside them
        assert "?" not in p.values() and p["rows"] > 0
        assert (Path(claims_module.__file__).resolve().parents[3] / p["provenance"]).is_file()


@pytest.mark.parametrize("key, figure", [("sglang-baseline", "frames"), ("compile-speedup", "height")])
def test_a_gpu_row_whose_reference_measured_another_shape_is_not_judged(monkeypatch, key, figure):
    figures = sources.source_claim(key).figures
    monkeypatch.setitem(figures, figure, figures[figure] + 1)
    row = _rows()[key]
    assert row["verdict"] == "cannot test here" and "the reference measured" in row["why"]


def test_split_exactness_row_agrees_only_when_the_exchange_is_exact_and_the_crop_is_not():
    def split(exact, crop):
        es = _stub_study().exact_split
        return {**es, "rows": [{**es["rows"][0], "max_abs": exact}, {**es["rows"][1], "max_abs": crop}]}
    thr = T["exact_abs"]
    assert _rows(exact_split=split(0.0, 0.08))["multi-device-exactness"]["verdict"] == "agrees"
    assert _rows(exact_split=split(2 * thr, 0.08))["multi-device-exactness"]["verdict"] == "disagrees"
    assert _rows(exact_split=split(0.0, thr / 2))["multi-device-exactness"]["verdict"] == "disagrees"


def test_memory_rows_judge_the_findings_peak_within_the_stated_factor():
    f = sources.source_claim("decode-bytes-per-pixel").figures
    claimed = f["peak_gb"] * 1e9 / (f["frames"] * f["height"] * f["width"])
    k = T["memory_factor"]
    for bpp, verdict in ((claimed * k * 0.99, "agrees"), (claimed * k * 1.01, "disagrees"), (claimed / k / 1.01, "disagrees")):
        lb = {**_stub_study().decode_bytes_per_px, "bytes_per_pixel_frame": 2 * bpp}  # float32: halved to 2 B per value
        assert _rows(decode_bytes_per_px=lb)["decode-bytes-per-pixel"]["verdict"] == verdict, bpp
