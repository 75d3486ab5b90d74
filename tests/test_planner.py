"""Cost model and planner on synthetic measurements with known coefficients (no decoding)."""

import pytest

from vaestudy.bench import planner as P

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
    big = P.plan(cm, 81, (480, 832), P.parse_bytes("64GiB"))
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
    assert P.parse_bytes(text) == value


@pytest.mark.parametrize("text", ["eight", "8 parsecs", "-1GB", "0", ""])
def test_parse_bytes_rejects(text):
    with pytest.raises(ValueError, match="budget"):
        P.parse_bytes(text)


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
