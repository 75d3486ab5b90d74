"""The speed levers on the exact stream: what applies where, compiles per chunk signature, dtype errors, the table.

No assertion reads a speed: ratios are checked to be the ratios of the run's own medians, and the compile count
against the distinct decoder call signatures of the stream.
"""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import assert_video_close, latent_for
from vaestudy.bench.levers import (
    BASELINES,
    DTYPE_TOL,
    LEVERS,
    call_signatures,
    compiled_decoder,
    lever_plan,
    lever_subject,
    levers_table,
    levers_verdict,
    measure_levers,
    stream_decode,
)
from vaestudy.cli import main
from vaestudy.registry import exemplar

EXACT = exemplar("exact stream").name


def test_cpu_runs_what_applies_and_skips_the_cuda_levers():
    plan = {p["lever"]: p for p in lever_plan("cpu")}
    assert set(plan) == set(LEVERS)
    for name, lv in LEVERS.items():
        assert plan[name]["applies"] == (not lv.needs_cuda)
        assert plan[name]["why"] == ("skipped: needs CUDA" if lv.needs_cuda else "")


def test_on_a_cuda_device_every_lever_applies(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # control flow only: no kernel runs
    assert all(p["applies"] for p in lever_plan("cuda"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert [p["lever"] for p in lever_plan("cuda") if not p["applies"]] == \
        [n for n, lv in LEVERS.items() if lv.needs_cuda]


@pytest.mark.slow
def test_compile_builds_one_graph_per_chunk_signature(tiny):
    vae = tiny(EXACT)
    z = latent_for(vae, 7, 4, seed=1)  # 7 latent frames in chunks of 2: a first chunk of 1, then 3 of 2
    sigs = call_signatures(vae, z, 2)
    assert len(sigs) > len(set(sigs))  # some signature repeats: a steady chunk that must not recompile
    eager = stream_decode(vae, z, 2)
    with compiled_decoder(vae, backend="eager") as stats:  # dynamo's tracing only: the count, not the speed
        once = stream_decode(vae, z, 2)
        again = stream_decode(vae, z, 2)
    assert stats["compiles"] == len(set(sigs)), (stats, sigs)  # once per distinct shape, none on the second decode
    assert stats["graph_breaks"] == 0
    assert_video_close(again, once, what="second compiled decode")
    assert_video_close(once, eager, what="compiled vs eager decode")


@pytest.mark.parametrize("lever", ["bf16", "fp16"])
def test_dtype_lever_error_is_within_the_dtype_tolerance(tiny, lever):
    vae = tiny(EXACT)
    r = measure_levers(vae, frames=5, size=(16, 16), levers=[lever], repeats=1, warmup=0)
    row = next(x for x in r["rows"] if x["lever"] == lever)
    assert 1e-5 < row["max_abs"] <= DTYPE_TOL[lever]  # the cast took effect, and rounding stayed bounded
    assert not row["exact"]


def test_rows_are_ratios_of_one_run(tiny):
    vae = tiny(EXACT)
    r = measure_levers(vae, frames=5, size=(16, 16), levers=["channels_last_3d", "cuda graph"], repeats=2, warmup=0)
    rows = {x["lever"]: x for x in r["rows"]}
    assert list(rows) == [*BASELINES, "channels_last_3d", "cuda graph"]
    assert rows["cuda graph"]["status"] == "skipped: needs CUDA" and "median_s" not in rows["cuda graph"]
    stream, dec = rows["exact stream"]["median_s"], rows["decode()"]["median_s"]
    for x in (rows["exact stream"], rows["channels_last_3d"]):
        assert x["min_s"] <= x["median_s"] <= x["max_s"]
        assert x["vs_stream"] == pytest.approx(stream / x["median_s"])
        assert x["vs_decode"] == pytest.approx(dec / x["median_s"])
    assert rows["exact stream"]["exact"] and rows["channels_last_3d"]["exact"]  # fp32 reorderings of the decode
    text = levers_table(r)
    assert "skipped: needs CUDA" in text and "channels_last_3d" in text
    assert "goal is set for a GPU" in levers_verdict(r)


def test_bad_inputs_are_refused_before_any_decode(tiny):
    vae = tiny(EXACT)
    with pytest.raises(ValueError, match="levers="):
        measure_levers(vae, frames=5, size=(16, 16), levers=["turbo"])
    with pytest.raises(ValueError, match="repeats="):
        measure_levers(vae, frames=5, size=(16, 16), repeats=0)
    with pytest.raises(ValueError, match="fp32"):
        measure_levers(copy.deepcopy(vae).to(torch.float64), frames=5, size=(16, 16))


def test_cli_refuses_bad_options_naming_them(capsys):
    for argv, name in ((["levers", "--levers", "turbo"], "levers="), (["levers", "--size", "6"], "size="),
                       (["levers", "--frames", "10", "--levers", "none"], "frames=10"),
                       (["levers", "--repeats", "0"], "repeats=0")):
        assert main(argv) == 2, argv
        assert name in capsys.readouterr().err, argv


def test_the_verdict_calls_an_eager_compile_ratio_noise():
    base = {"device": "cpu", "repeats": 2, "meets_goal": False, "best": "compile", "best_vs_decode": 1.19,
            "best_exact": "compile", "best_exact_vs_decode": 1.19}
    assert "timing noise" in levers_verdict({**base, "compile_backend": "eager"})
    assert "timing noise" not in levers_verdict({**base, "compile_backend": "inductor"})
    assert "timing noise" not in levers_verdict({**base, "compile_backend": "eager", "best": "bf16",
                                                 "best_exact": "channels_last_3d"})


def test_without_an_exact_stream_the_levers_act_on_decode(tiny):
    """A stream that is not the decode's arithmetic (or no cache at all) would be judged against another decode: the
    levers act on the family's own decode() instead, and the stream-only CUDA graph is skipped, not faked."""
    name = exemplar("groupnorm stream").name
    assert lever_subject(exemplar("exact stream")) == "exact stream" and lever_subject(exemplar("groupnorm stream")) \
        == "decode()"
    r = measure_levers(tiny(name), frames=9, size=(16, 16), levers=["channels_last_3d", "cuda graph"], repeats=1,
                       warmup=0)
    rows = {x["lever"]: x for x in r["rows"]}
    assert r["subject"] == "decode()" and list(rows) == ["decode()", "channels_last_3d", "cuda graph"]
    assert "vs_stream" not in rows["channels_last_3d"]
    assert rows["channels_last_3d"]["vs_decode"] == pytest.approx(rows["decode()"]["median_s"]
                                                                  / rows["channels_last_3d"]["median_s"])
    assert rows["channels_last_3d"]["exact"]  # a memory layout reorders fp32 sums of the same decode
    assert rows["cuda graph"]["status"].startswith("skipped")
    assert "acting on the family's own decode()" in levers_verdict(r)


def test_the_verdict_says_when_the_best_ratio_is_within_the_spread():
    base = {"status": "measured", "vs_decode": 1.0, "exact": True}
    rows = [{**base, "lever": "decode()", "median_s": 1.0, "min_s": 0.8, "max_s": 1.2},
            {**base, "lever": "channels_last_3d", "median_s": 0.9, "min_s": 0.85, "max_s": 0.95, "vs_decode": 1.11}]
    r = {"device": "cpu", "best": "channels_last_3d", "best_exact": "channels_last_3d", "best_vs_decode": 1.11,
         "best_exact_vs_decode": 1.11, "meets_goal": False, "repeats": 2, "rows": rows}
    assert "within this run's spread" in levers_verdict(r)
    rows[1].update(min_s=0.5, max_s=0.6, median_s=0.55)
    assert "spread" not in levers_verdict(r)
