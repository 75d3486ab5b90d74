"""Cost model and planner on synthetic measurements with known coefficients (no decoding)."""

import math

import pytest

from vaestudy.bench import planner as P
from vaestudy.cli import parse_bytes  # strings are parsed in the CLI only

TIME = {"computed_pixel_frames": 2e-6, "decoder_calls": 0.05, "const": 0.3}
MEM = {"resident_pixel_frames": 24.0, "working_pixel_frames": 900.0, "const": 5e7}


def synth(strategy, frames, size, consumer="keep", chunk=None, tile=None, overlap=None, noise=0.0, i=0):
    f = P.features("wan2.1", strategy, frames, size, chunk=chunk, tile=tile, overlap=overlap, consumer=consumer)
    sec = sum(TIME[k] * f[k] for k in TIME) * (1 + noise * (-1) ** i)
    mem = sum(MEM[k] * f[k] for k in MEM) * (1 + noise * (-1) ** (i + 1))
    return {"model": "wan2.1", "strategy": strategy, "frames": frames, "size": list(size), "chunk": chunk,
            "tile": tile, "overlap": overlap, "consumer": consumer, "device": "cpu", "dtype": "float32",
            "env": {"threads": 1}, "wall_s": {"median": sec, "min": sec, "max": sec}, "peak_bytes": mem,
            "model_bytes": 2 * 10**8, "run_id": "r", "weights": "random"}


def sweep_records(noise=0.0):
    recs, i = [], 0
    for frames in (5, 9, 17, 33):
        for size in ((32, 32), (64, 64), (64, 96)):
            recs.append(synth("full", frames, size, noise=noise, i=i))
            recs.append(synth("chunked", frames, size, "discard", chunk=1, noise=noise, i=i + 1))
            recs.append(synth("chunked", frames, size, "keep", chunk=2, noise=noise, i=i + 2))
            recs.append(synth("tiled", frames, size, tile=[3, 3], overlap=[1, 1], noise=noise, i=i + 3))
            i += 4
    return recs


def test_fit_recovers_known_coefficients():
    cm = P.fit_cost_model(sweep_records(), "wan2.1")
    got = cm.pooled_time.as_dict()
    for k, v in TIME.items():
        assert got[k] == pytest.approx(v, rel=1e-6), k
    got = cm.pooled_memory.as_dict()
    for k, v in MEM.items():
        assert got[k] == pytest.approx(v, rel=1e-6), k
    assert cm.model_bytes == 2 * 10**8


def test_predictions_match_and_holdout_error_is_small():
    recs = sweep_records()
    cm = P.fit_cost_model(recs, "wan2.1")
    r = synth("tiled", 65, (128, 128), tile=[4, 4], overlap=[1, 1])
    p = cm.predict("tiled", 65, (128, 128), tile=[4, 4], overlap=[1, 1])
    assert p["seconds"] == pytest.approx(r["wall_s"]["median"], rel=1e-6)
    assert p["bytes"] == pytest.approx(r["peak_bytes"], rel=1e-6)
    es = P.error_summary(P.holdout_errors(recs, "wan2.1"))
    assert es["n"] == len(recs) and es["time_max"] < 1e-6 and es["memory_max"] < 1e-6
    es = P.error_summary(P.holdout_errors(sweep_records(noise=0.05), "wan2.1"))
    assert es["time_median"] < 0.25


def test_planner_picks_the_fastest_strategy_that_fits():
    cm = P.fit_cost_model(sweep_records(), "wan2.1")
    big = P.plan(cm, 81, (480, 832), parse_bytes("64GiB"))
    assert big["best"] is big["rows"][0]  # everything fits: the fastest wins
    full = cm.predict("full", 81, (480, 832))
    tight = P.plan(cm, 81, (480, 832), int(full["total_bytes"] * 0.5))
    best = tight["best"]
    assert best is not None and best["total_bytes"] <= full["total_bytes"] * 0.5
    assert best["strategy"] != "full"  # the full decode does not fit half of its own memory
    assert all(r["seconds"] >= best["seconds"] for r in tight["rows"] if r["fits"])
    none = P.plan(cm, 81, (480, 832), 1000)
    assert none["best"] is None


def test_streaming_memory_does_not_grow_with_frames_in_the_features():
    a = P.features("wan2.1", "chunked", 17, (64, 64), chunk=1, consumer="discard")
    b = P.features("wan2.1", "chunked", 65, (64, 64), chunk=1, consumer="discard")
    assert a["resident_pixel_frames"] == b["resident_pixel_frames"]
    assert b["computed_pixel_frames"] > a["computed_pixel_frames"]
    k = P.features("wan2.1", "chunked", 65, (64, 64), chunk=1, consumer="keep")
    assert k["resident_pixel_frames"] == 65 * 64 * 64


def test_fit_refuses_mixed_devices_and_empty_input():
    recs = sweep_records()
    recs[0] = dict(recs[0], env={"threads": 2})
    with pytest.raises(ValueError, match="mix"):
        P.fit_cost_model(recs, "wan2.1")
    with pytest.raises(ValueError, match="no usable"):
        P.fit_cost_model([], "wan2.1")
    mixed = sweep_records() + [dict(r, weights="tiny") for r in sweep_records()]
    with pytest.raises(ValueError, match="weights"):
        P.fit_cost_model(mixed, "wan2.1")
    assert P.fit_cost_model(mixed, "wan2.1", weights="random").pooled_time.n == len(sweep_records())


@pytest.mark.parametrize("text, value", [("8GiB", 8 * 2**30), ("512MB", 512 * 10**6), ("1.5g", int(1.5 * 2**30)),
                                         (1000, 1000), ("2 gib", 2 * 2**30)])
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["eight", "8 parsecs", "-1GB", "0", "", "8", "8.5"])
def test_parse_bytes_rejects(text):
    with pytest.raises(ValueError, match="budget"):
        parse_bytes(text)


@pytest.mark.parametrize("text", ["8", "8.5", " 512 "])
def test_a_bare_number_needs_a_unit(text):
    # 8 could be bytes, GB or GiB: a factor of 10^9 apart, so the planner refuses to guess
    with pytest.raises(ValueError, match="needs a unit"):
        parse_bytes(text)


def test_cli_plan_bad_input(tmp_path, capsys):
    from vaestudy.cli import main

    assert main(["plan", "--memory-budget", "lots", "--results", str(tmp_path / "none.jsonl")]) == 2
    assert "lots" in capsys.readouterr().err
    assert main(["plan", "--frames", "80", "--results", str(tmp_path / "none.jsonl")]) == 2
    assert main(["plan", "--results", str(tmp_path / "none.jsonl")]) == 2
    assert "no measurements" in capsys.readouterr().err


def test_cli_plan_end_to_end(tmp_path, capsys):
    from vaestudy.bench.store import ResultStore
    from vaestudy.cli import main

    store = ResultStore(tmp_path / "r.jsonl")
    for r in sweep_records(noise=0.02):
        store.append(r)
    assert main(["plan", "--frames", "81", "--size", "480x832", "--memory-budget", "64GiB",
                 "--results", str(store.path)]) == 0
    out = capsys.readouterr().out
    assert "held-out" in out and "recommended:" in out


# ---------------------------------------------------------------------------------------------
# the measured range and its warnings
# ---------------------------------------------------------------------------------------------
def test_fit_range_spans_the_records():
    rng = P.fit_range(sweep_records())
    assert rng["frames"] == (5, 33)
    assert rng["pixels"] == (32 * 32, 64 * 96) and rng["sizes"] == [(32, 32), (64, 64), (64, 96)]
    assert rng["weights"] == ["random"] and rng["configs"] == ["full-size"]
    assert rng["model_bytes"] == (2 * 10**8, 2 * 10**8)
    assert {("full", None, 1), ("chunked", 1, 1), ("chunked", 2, 1)} <= set(rng["setups"])
    assert any(s[0] == "tiled" and s[2] > 1 for s in rng["setups"])
    with pytest.raises(ValueError, match="at least one record"):
        P.fit_range([])


@pytest.mark.parametrize("request_, expect", [
    ({"frames": 17, "size": (64, 64)}, []),
    ({"frames": 5, "size": (32, 32)}, []),  # the range's own edges are measured
    ({"frames": 33, "size": (64, 96), "weights": "pretrained"}, []),  # pretrained is the random weights' network
    ({"frames": 34, "size": (64, 64)}, ["34 frames", "5 to 33 frames"]),
    ({"frames": 1, "size": (64, 64)}, ["1 frames", "5 to 33 frames"]),
    ({"frames": 17, "size": (480, 832)}, ["480x832 = 399,360 px", "1,024 to 6,144 px", "32x32, 64x64, 64x96"]),
    ({"frames": 17, "size": (16, 16)}, ["16x16 = 256 px"]),
    ({"frames": 17, "size": (64, 64), "weights": "tiny"}, ["tiny weights", "random (full-size)"]),
    ({"frames": 17, "size": (64, 64), "model_bytes": 10**9}, ["953.7 MiB", "only 190.7 MiB"]),
])
def test_outside_range_names_the_request_and_the_measured_range(request_, expect):
    got = P.outside_range(request_, P.fit_range(sweep_records()))
    assert len(got) == (1 if expect else 0), got
    for text in expect:
        assert text in got[0], (text, got)


def test_outside_range_lists_every_dimension_it_leaves():
    got = P.outside_range({"frames": 81, "size": (480, 832), "weights": "tiny"}, P.fit_range(sweep_records()))
    assert [g.split(":")[0] for g in got] == ["frames", "pixels per frame", "model size"]


@pytest.mark.parametrize("request_, match", [
    ({"size": (64, 64)}, "lacks"), ({"frames": 0, "size": (64, 64)}, "frames=0"),
    ({"frames": 17.5, "size": (64, 64)}, "frames=17.5"), ({"frames": 17, "size": (64,)}, "size="),
    ({"frames": 17, "size": (0, 64)}, "size="), ({"frames": 17, "size": (64, 64), "weights": "huge"}, "weights='huge'"),
])
def test_outside_range_rejects_bad_requests(request_, match):
    with pytest.raises(ValueError, match=match):
        P.outside_range(request_, P.fit_range(sweep_records()))


def tiny_points():
    """The issue's case: four 9x32x32 points of the tiny network, one per strategy."""
    return [dict(r, weights="tiny") for r in sweep_records() if r["frames"] == 9 and tuple(r["size"]) == (32, 32)]


def test_plan_warns_when_it_extrapolates_and_not_inside_the_range():
    cm = P.fit_cost_model(tiny_points(), "wan2.1")
    far = P.plan(cm, 81, (480, 832), parse_bytes("64GiB"), weights="pretrained")
    assert [w.split(":")[0] for w in far["warnings"] if not w.startswith("setup")] == \
        ["frames", "pixels per frame", "model size"]
    assert "only 9 frames" in far["warnings"][0] and "only 1,024 px" in far["warnings"][1]
    text = P.plan_text(cm, 81, (480, 832), parse_bytes("64GiB"), weights="pretrained")
    assert text.count("warning") == len(far["warnings"]) and "399,360" in text
    near = P.plan(cm, 9, (32, 32), parse_bytes("64GiB"), weights="tiny")
    assert not [w for w in near["warnings"] if not w.startswith("setup")]
    inside = P.plan(P.fit_cost_model(sweep_records(), "wan2.1"), 17, (64, 64), 10**12, weights="random")
    expected = [] if inside["best"]["measured"] else [P.unmeasured_setup(inside["best"], P.fit_range(sweep_records()))]
    assert inside["warnings"] == expected


def test_an_unmeasured_setup_is_flagged_and_a_measured_one_is_not():
    cm = P.fit_cost_model(sweep_records(), "wan2.1")
    res = P.plan(cm, 17, (64, 64), 10**12)
    measured = [r for r in res["rows"] if r["measured"]]
    unmeasured = [r for r in res["rows"] if not r["measured"]]
    assert measured and unmeasured
    assert {(r["strategy"], r["chunk"]) for r in measured} >= {("full", None), ("chunked", 1), ("chunked", 2)}
    assert all(P.unmeasured_setup(r, cm.measured) is None for r in measured)
    msg = P.unmeasured_setup(next(r for r in unmeasured if r["chunk"] == 4), cm.measured)
    assert "chunked chunk=4 was never measured" in msg and "chunked chunk=1" in msg
    # a budget only an unmeasured setup fits: the recommendation says so
    only = min(unmeasured, key=lambda r: r["total_bytes"])
    assert only["total_bytes"] < min(r["total_bytes"] for r in measured)
    tight = P.plan(cm, 17, (64, 64), math.ceil(only["total_bytes"]))
    assert tight["best"] is not None and not tight["best"]["measured"]
    assert any("never measured" in w for w in tight["warnings"])


def test_a_hand_built_cost_model_plans_without_a_range():
    cm = P.fit_cost_model(sweep_records(), "wan2.1")
    bare = P.CostModel(model="wan2.1", time=cm.time, memory=cm.memory, pooled_time=cm.pooled_time,
                       pooled_memory=cm.pooled_memory, model_bytes=cm.model_bytes)
    res = P.plan(bare, 81, (480, 832), 10**12)
    assert res["warnings"] == [] and res["best"] is not None and res["best"]["measured"] is None


@pytest.mark.parametrize("budget", [0, -5, 2.5, "8GiB", True])
def test_plan_rejects_a_budget_that_is_not_bytes(budget):
    cm = P.fit_cost_model(sweep_records(), "wan2.1")
    with pytest.raises(ValueError, match="budget_bytes"):
        P.plan(cm, 17, (64, 64), budget)


def test_holdout_text_says_it_holds_within_the_measured_range_only():
    recs = sweep_records(noise=0.05)
    es = P.error_summary(P.holdout_errors(recs, "wan2.1"))
    text = P.holdout_text(es, P.fit_range(recs))
    assert "within the measured range only" in text and "frames 5 to 33" in text and "1,024 to 6,144 px" in text
    assert f"over {len(recs)} measured points" in text


# ---------------------------------------------------------------------------------------------
# which records: device, card, dtype, weights
# ---------------------------------------------------------------------------------------------
def on_card(recs, device, card, dtype="bfloat16"):
    return [dict(r, device=device, dtype=dtype, env={"threads": 16, "device_name": card}) for r in recs]


def test_two_cards_at_one_device_index_are_not_mixed():
    h200, a100 = on_card(sweep_records(), "cuda:0", "NVIDIA H200"), on_card(sweep_records(), "cuda:0", "NVIDIA A100")
    with pytest.raises(ValueError, match=r"mix hardware \['NVIDIA A100', 'NVIDIA H200'\] at device cuda:0"):
        P.fit_cost_model(h200 + a100, "wan2.1")
    cm = P.fit_cost_model(h200 + a100, "wan2.1", hardware="h200")
    assert cm.hardware == "NVIDIA H200" and cm.pooled_time.n == len(h200)
    assert cm.selection.describe() == f"{len(h200)} of {2 * len(h200)} records (left out: {len(a100)} from cards " \
                                      f"not matching 'h200')"
    with pytest.raises(ValueError, match="NVIDIA A100 bfloat16 random"):  # the error says what there is
        P.fit_cost_model(a100, "wan2.1", hardware="H100")


def test_selection_counts_what_it_leaves_out():
    cpu = sweep_records()
    gpu = on_card(sweep_records(), "cuda:0", "NVIDIA H200")
    other = [dict(r, model="cogvideox") for r in sweep_records()[:3]]
    video = [dict(cpu[0], consumer="video")]
    sel = P.select_records(cpu + gpu + other + video, "wan2.1", device="cuda", dtype="bfloat16")
    assert sel.records == gpu and sel.total == len(cpu + gpu + other + video)
    assert sel.excluded == {"video-consumer records": 1, "of other families": 3,
                            "from devices other than cuda:0": len(cpu), "in dtypes other than bfloat16": 0}


@pytest.mark.parametrize("kw, match", [({"device": "tpu"}, "device='tpu'"), ({"dtype": "fp8"}, "dtype='fp8'"),
                                       ({"weights": "huge"}, "weights='huge'"), ({"hardware": " "}, "hardware="),
                                       ({"model": "sora"}, "sora")])
def test_selection_rejects_bad_filters(kw, match):
    model = kw.pop("model", "wan2.1")
    with pytest.raises(ValueError, match=match):
        P.select_records(sweep_records(), model, **kw)


def test_holdout_predicts_only_the_records_the_fit_may_use():
    cpu, gpu = sweep_records(), on_card(sweep_records(noise=0.3), "cuda:0", "NVIDIA H200")
    errs = P.holdout_errors(cpu + gpu, "wan2.1", device="cpu")
    assert len(errs) == len(cpu) and max(abs(e["time_err"]) for e in errs) < 1e-6


# ---------------------------------------------------------------------------------------------
# the recommendation is a row of the table
# ---------------------------------------------------------------------------------------------
def tight_plan():
    """A plan whose recommendation ranks below the fastest rows (they do not fit)."""
    cm = P.fit_cost_model(sweep_records(), "wan2.1")
    rows = P.plan(cm, 33, (64, 96), 10**12)["rows"]
    budget = int(min(r["total_bytes"] for r in rows) * 1.01)
    res = P.plan(cm, 33, (64, 96), budget)
    rank = next(i for i, r in enumerate(res["rows"]) if r is res["best"])
    assert rank > 1  # else the test would not test anything
    return res, rank


def test_the_table_always_holds_the_recommendation():
    res, rank = tight_plan()
    shown = P.table_rows(res, 1)
    assert shown[0] is res["rows"][0] and shown[-1] is res["best"] and len(shown) == 2
    table = P.format_table(res, 1)
    starred = [line for line in table.splitlines() if line.startswith("*")]
    assert len(starred) == 1 and P.describe(res["best"]) in starred[0]
    assert f"... {rank - 1} faster candidates, none of them fits" in table
    assert len(P.table_rows(res, len(res["rows"]))) == len(res["rows"])


def test_when_nothing_fits_the_table_holds_the_smallest():
    res = P.plan(P.fit_cost_model(sweep_records(), "wan2.1"), 33, (64, 96), 1000)
    assert res["best"] is None
    shown = P.table_rows(res, 1)
    assert shown[-1] is P.smallest(res) and P.smallest(res) is not res["rows"][0]


@pytest.mark.parametrize("top", [0, -1, 1.5, True])
def test_table_rows_rejects_a_bad_top(top):
    res, _ = tight_plan()
    with pytest.raises(ValueError, match="top="):
        P.table_rows(res, top)


def _table_and_answer(out):
    lines = out.splitlines()
    answer = next(line for line in lines if line.startswith(("recommended", "nothing is predicted")))
    head = next(i for i, line in enumerate(lines) if line.lstrip().startswith("strategy"))
    table = [line for line in lines[head + 1:] if line.startswith(("* ", "  "))]
    return table, answer


def test_cli_recommendation_is_a_printed_row(tmp_path, capsys):
    from vaestudy.bench.store import ResultStore
    from vaestudy.cli import main

    store = ResultStore(tmp_path / "r.jsonl")
    for r in sweep_records():
        store.append(r)
    res, _ = tight_plan()
    budget = f"{res['budget_bytes']}B"
    assert main(["plan", "--frames", "33", "--size", "64x96", "--memory-budget", budget, "--top", "1",
                 "--records", str(store.path)]) == 0
    table, answer = _table_and_answer(capsys.readouterr().out)
    best = answer.split(": ", 1)[1].split(" — ")[0]
    assert answer.startswith("recommended: ")
    starred = [line for line in table if line.startswith("* ")]
    assert len(starred) == 1 and starred[0][2:].startswith(best + " ")
    # and the numbers of the answer are the row's
    assert f"{res['best']['seconds']:.2f} s" in answer and f"{res['best']['seconds']:.2f}" in starred[0]


def test_cli_rejects_a_bare_memory_budget(tmp_path, capsys):
    from vaestudy.cli import main

    assert main(["plan", "--memory-budget", "8", "--records", str(tmp_path / "none.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "memory budget='8' needs a unit" in err


def test_cli_warns_about_the_issues_extrapolation(tmp_path, capsys):
    """Four 9x32x32 points of the tiny network, asked for 81x480x832 of the real one: three warnings, and the
    fit-quality line says where it holds."""
    from vaestudy.bench.store import ResultStore
    from vaestudy.cli import main

    store = ResultStore(tmp_path / "tiny.jsonl")
    for r in tiny_points():
        store.append(r)
    assert main(["plan", "--frames", "81", "--size", "480x832", "--memory-budget", "64GiB",
                 "--records", str(store.path)]) == 0
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert any("81 frames" in w and "only 9 frames" in w for w in warnings)
    assert any("399,360 px" in w and "only 1,024 px" in w for w in warnings)
    assert any("pretrained weights" in w and "tiny (tiny)" in w for w in warnings)
    assert "within the measured range only" in out and f"extrapolated, see the {len(warnings)} warning(s) above" in out
    assert main(["plan", "--frames", "9", "--size", "32x32", "--memory-budget", "64GiB", "--target-weights", "tiny",
                 "--records", str(store.path)]) == 0
    out = capsys.readouterr().out
    assert not [line for line in out.splitlines() if line.startswith("warning:") and "setup:" not in line]
