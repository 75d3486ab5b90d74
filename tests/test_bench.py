"""Benchmark harness: memory method, results store (atomic append, resume, Ctrl-C), metadata,
ratios from one run, consumers and bad input. No timing assertions."""

import json
import math
from pathlib import Path

import pytest
import torch

from conftest import assert_video_close
from vaestudy import bench as B
from vaestudy.bench import runner  # sweep calls runner.measure
from vaestudy.clock import Clock

MB = 10**6


def _alloc_200mb():
    return torch.ones(50_000_000)  # 200 MB of float32, every page touched


def test_memory_method_reads_a_known_allocation_inline():
    if B.PeakMemory("cpu").method != "vmhwm-reset" or not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc/self/clear_refs")
    peak = B.measure_peak(_alloc_200mb)
    assert abs(peak - 200 * MB) <= 8 * MB, peak
    # the baseline resets: a second, smaller measurement is not masked by the first
    assert abs(B.measure_peak(lambda: torch.ones(12_500_000)) - 50 * MB) <= 8 * MB


def test_memory_method_reads_a_known_allocation_in_a_fresh_process():
    peak = B.isolated_probe(200 * MB)
    assert abs(peak - 200 * MB) <= 8 * MB, peak


def test_timer_marks_are_monotonic_on_cpu():
    t = Clock("cpu")
    t.start()
    for _ in range(3):
        t.mark()
    m = t.read()
    assert len(m) == 3 and all(b >= a >= 0 for a, b in zip(m, m[1:]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA events and torch.cuda memory stats need a GPU")
def test_cuda_timer_and_memory():
    t = Clock("cuda")
    t.start()
    x = torch.ones(1000, 1000, device="cuda") @ torch.ones(1000, 1000, device="cuda")
    t.mark()
    assert t.read()[0] > 0
    peak = B.measure_peak(lambda: torch.ones(25_000_000, device="cuda"), "cuda")
    assert abs(peak - 100 * MB) <= 4 * MB
    del x


# ---- store ------------------------------------------------------------------------------------
def test_store_appends_whole_lines_and_skips_a_torn_one(tmp_path):
    store = B.ResultStore(tmp_path / "r.jsonl")
    store.append({"key": "a", "v": 1})
    with open(store.path, "ab") as f:  # a crash in the middle of a write
        f.write(b'{"key": "b", "v"')
    store.append({"key": "c", "v": 3})
    recs = store.load()
    assert [r["key"] for r in recs] == ["a", "c"] and store.skipped == 1
    assert all(line.endswith("}") for line in store.path.read_text().splitlines() if '"c"' in line)


def _cfgs(**kw):
    base = dict(model="wan2.1", weights="tiny", size=(16, 16), repeats=1, warmup=0)
    base.update(kw)
    return [B.BenchConfig(frames=5, strategy="full", **base), B.BenchConfig(frames=5, strategy="chunked", consumer="discard", **base)]


def test_sweep_resumes_and_ctrl_c_loses_nothing_written(tmp_path, tiny, monkeypatch):
    vae = tiny("wan2.1")
    path = tmp_path / "bench.jsonl"
    real = B.measure
    calls = []

    def interrupted(cfg, **kw):
        calls.append(cfg.strategy)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(cfg, **kw)

    monkeypatch.setattr(runner, "measure", interrupted)
    with pytest.raises(KeyboardInterrupt):
        B.sweep(_cfgs(), path, vae=vae, flops=False, progress=False)
    assert [r["strategy"] for r in B.ResultStore(path).load()] == ["full"]

    calls.clear()
    monkeypatch.setattr(runner, "measure", lambda cfg, **kw: (calls.append(cfg.strategy), real(cfg, **kw))[1])
    recs = B.sweep(_cfgs(), path, vae=vae, flops=False, progress=False)
    assert calls == ["chunked"]  # full was skipped: already in the store
    assert [r["resumed"] for r in recs] == [True, False]
    assert len(B.ResultStore(path).load()) == 2

    calls.clear()
    B.sweep(_cfgs(), path, vae=vae, flops=False, progress=False)
    assert calls == []
    # a changed parameter is a different configuration
    B.sweep(_cfgs(repeats=2)[:1], path, vae=vae, flops=False, progress=False)
    assert calls == ["full"]


def test_config_key_depends_on_config_and_environment_identity():
    env = B.environment("cpu", "float32")
    a, b = _cfgs()
    assert B.config_key(a, env) == B.config_key(a, dict(env, loadavg=[9, 9, 9]))  # load is noted, not identity
    assert B.config_key(a, env) != B.config_key(b, env)
    assert B.config_key(a, env) != B.config_key(a, dict(env, threads=env["threads"] + 1))


# ---- records ----------------------------------------------------------------------------------
def test_record_metadata_fields(tiny):
    vae = tiny("wan2.1")
    cfg = B.BenchConfig(model="wan2.1", weights="tiny", frames=9, size=(16, 16), strategy="tiled+chunked",
                        consumer="discard", tile=1, overlap=0, repeats=2, warmup=1)
    rec = B.measure(cfg, vae=vae, machine_peak_flops=1e12)
    json.dumps(rec)  # storable
    for k in ("device", "device_name", "platform", "threads", "torch", "diffusers", "dtype", "loadavg"):
        assert k in rec["env"], k
    assert rec["env"]["torch"] == torch.__version__ and rec["env"]["device_name"]
    assert rec["weights_source"] == "tiny" and rec["dtype"] == "float32" and rec["size"] == [16, 16]
    assert rec["chunk"] == 1 and rec["tile"] == [1, 1] and rec["overlap"] == [0, 0]
    assert rec["timestamp"].endswith("+00:00") and rec["latent_shape"] == [16, 3, 2, 2]
    assert len(rec["wall_s_all"]) == 2 and rec["wall_s"]["min"] <= rec["wall_s"]["median"] <= rec["wall_s"]["max"]
    assert rec["chunks"] == 3 and rec["flops"] > 0 and 0 < rec["fraction_of_peak"]
    assert rec["peak_bytes"] is not None and rec["memory_method"] in ("vmhwm-reset", "ru_maxrss")
    assert rec["model_bytes"] == sum(p.numel() * 4 for p in vae.parameters())


def test_keep_consumer_returns_the_full_decode(tiny):
    from vaestudy.decode import decode_full
    from vaestudy.decode.common import random_latent

    vae = tiny("wan2.1")
    z = random_latent(vae, 9, (16, 16), seed=1)
    cfg = B.validate_config(B.BenchConfig(model="wan2.1", weights="tiny", frames=9, size=(16, 16), strategy="chunked"))
    keep = B.KeepConsumer()
    for out in B.iter_strategy(vae, z, cfg):
        keep(out)
    keep.close()
    # chunked with the cache vs one decode(): the same maths in another summation order, not the same bits
    assert_video_close(keep.video, decode_full(vae, z).video, what="KeepConsumer's chunked video vs decode_full")


def test_video_consumer_writes_every_frame(tmp_path):
    import av

    path = tmp_path / "v.mp4"
    c = B.VideoConsumer(path)
    for n in (1, 4, 4):
        c(torch.rand(1, 3, n, 16, 16) * 2 - 1)
    c.close()
    with av.open(str(path)) as f:
        assert sum(1 for _ in f.decode(video=0)) == 9


def _rec(strategy, run_id, wall, peak, consumer="keep", frames=17):
    cfg = B.validate_config(B.BenchConfig(model="wan2.1", weights="random", frames=frames, size=(64, 64),
                                          strategy=strategy, consumer=consumer))
    env = {"device": "cpu", "device_name": "x", "threads": 1, "torch": "t", "diffusers": "d", "dtype": "float32"}
    runs = [{"wall_s": w, "first_frame_s": w / 5, "chunk_s": [w / 5] * 5, "consumer_s": 0.0, "peak_bytes": peak,
             "memory_method": "vmhwm-reset"} for w in (wall, wall * 1.1, wall * 0.9)]
    return B.make_record(cfg, runs, env=env, weights="random", run_id=run_id)


def test_ratios_use_the_full_decode_of_the_same_run():
    recs = [_rec("full", "run1", 10.0, 1000), _rec("chunked", "run1", 5.0, 100, "discard"),
            _rec("full", "run2", 20.0, 4000), _rec("chunked", "run2", 30.0, 200, "discard"),
            _rec("chunked", "run3", 1.0, 50, "discard")]
    rows = B.with_ratios(recs)
    assert rows[1]["wall_ratio"] == pytest.approx(0.5) and rows[1]["peak_ratio"] == pytest.approx(0.1)
    assert rows[1]["fps_ratio"] == pytest.approx(2.0)
    assert rows[1]["first_frame_ratio"] == pytest.approx(1.0 / 10.0)  # first frame vs full latency, same run
    assert rows[3]["wall_ratio"] == pytest.approx(1.5) and rows[3]["peak_ratio"] == pytest.approx(0.05)
    assert rows[4]["wall_ratio"] is None  # no full decode in run3: no ratio, rather than one across runs
    text = B.format_summary(recs)
    assert "0.50" in text and "no full decode" in text


def test_ratio_pairs_only_the_same_shape():
    rows = B.with_ratios([_rec("full", "r", 10.0, 1000, frames=17), _rec("chunked", "r", 5.0, 100, "discard", frames=33)])
    assert rows[1]["wall_ratio"] is None


# ---- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, match", [
    ({"frames": [8]}, "frames=8"), ({"frames": ["x"]}, "frames="), ({"frames": "17,33"}, "frames="),
    ({"sizes": [(60, 64)]}, "height=60"), ({"sizes": ["64x64"]}, "sizes="), ({"sizes": [(64,)]}, "sizes="),
    ({"strategies": ["full", "fast"]}, "strategy='fast'"), ({"strategies": ["chunked"], "chunk": 0}, "chunk=0"),
    ({"strategies": ["tiled"], "tile": 99}, "tile="), ({"consumers": ["print"]}, "consumer='print'"), ({"repeats": 0}, "repeats=0"), ({"dtype": "float8"}, "dtype="),
    ({"device": "cuda:7"} if not torch.cuda.is_available() else {"device": "tpu"}, "device="),
    ({"model": "sora"}, "model='sora'"), ({"weights": "trained"}, "weights='trained'"),
])
def test_build_configs_rejects_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        B.build_configs(**kw)


def test_cli_bad_input_errors_before_any_model_load(monkeypatch, capsys):
    import vaestudy.registry.load
    from vaestudy.cli import main

    def boom(*a, **k):
        raise AssertionError("model loaded before the input was validated")

    monkeypatch.setattr(vaestudy.registry.load, "_vae_class", boom)
    assert main(["bench", "--frames", "8", "--out", "/nonexistent/x.jsonl"]) == 2
    assert "frames=8" in capsys.readouterr().err
    assert main(["bench", "--strategies", "full,sideways"]) == 2
    assert "sideways" in capsys.readouterr().err
    assert main(["bench", "--size", "64x60"]) == 2
    assert main(["bench", "--threads", "0", "--no-flops", "--weights", "tiny"]) == 2


def test_build_configs_default_consumers():
    cfgs = B.build_configs(frames=[5, 9], sizes=[(16, 16)], strategies=["full", "chunked"], weights="tiny")
    assert [(c.frames, c.strategy, c.consumer) for c in cfgs] == [
        (5, "full", "keep"), (5, "chunked", "discard"), (9, "full", "keep"), (9, "chunked", "discard")]
    cfgs = B.build_configs(frames=[5], sizes=[(16, 16)], strategies=["full", "chunked"], consumers=["keep", "discard"], weights="tiny")
    assert [(c.strategy, c.consumer) for c in cfgs] == [("full", "keep"), ("chunked", "keep"), ("chunked", "discard")]


def test_machine_peak_is_positive_and_finite():
    mp = B.machine_peak("cpu", "float32", repeats=1)
    assert mp["peak_flops"] > 0 and math.isfinite(mp["peak_flops"])


def test_interleaved_sweep_measures_side_by_side_and_resumes(tmp_path, tiny):
    vae = tiny("wan2.1")
    path = tmp_path / "i.jsonl"
    recs = B.sweep(_cfgs(repeats=2), path, vae=vae, flops=False, progress=False, interleave=True)
    assert [r["resumed"] for r in recs] == [False, False]
    assert all(r["interleaved"] and len(r["wall_s_all"]) == 2 for r in recs)
    assert len({r["run_id"] for r in recs}) == 1
    again = B.sweep(_cfgs(repeats=2), path, vae=vae, flops=False, progress=False, interleave=True)
    assert [r["resumed"] for r in again] == [True, True] and len(B.ResultStore(path).load()) == 2


def test_exact_rss_sees_reuse_of_freed_heap_pages():
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc/self/clear_refs")

    def churn():  # 8 MB blocks: below glibc's dynamic mmap ceiling, so normally recycled from the heap
        keep = [torch.ones(2_000_000) for _ in range(10)]
        return keep

    with B.exact_rss():
        churn()
        peak = B.measure_peak(churn)
    assert abs(peak - 80 * MB) <= 8 * MB, peak


def test_interleaved_ratios_pair_repeats():
    full = dict(_rec("full", "r", 10.0, 1000), interleaved=True, wall_s_all=[10.0, 40.0, 10.0])
    ch = dict(_rec("chunked", "r", 10.0, 100, "discard"), interleaved=True, wall_s_all=[11.0, 44.0, 11.0],
              first_frame_s_all=[1.0, 4.0, 1.0])
    row = B.with_ratios([full, ch])[1]
    # unpaired medians would say 1.1 too, but a load spike in repeat 2 must not move the paired ratio
    assert row["paired"] and row["wall_ratio"] == pytest.approx(1.1) and row["fps_ratio"] == pytest.approx(1 / 1.1)
    assert row["first_frame_ratio"] == pytest.approx(0.1)
    ch2 = dict(ch, wall_s_all=[11.0, 12.0, 11.0])  # the spike hit full only
    assert B.with_ratios([full, ch2])[1]["wall_ratio"] == pytest.approx(1.1)


def test_a_default_tile_plan_really_tiles_or_says_it_cannot():
    """At 32x32 (a 4x4 Wan latent) bench once ran 'tiled' as one 4x4 tile with overlap 0: the full decode."""
    cfg = B.validate_config(B.BenchConfig(model="wan2.1", weights="tiny", frames=5, size=(32, 32), strategy="tiled"))
    assert cfg.overlap == (2, 2) and cfg.tile == (3, 3)  # 2x2 tiles of 3 latent px, overlapping by 2
    with pytest.raises(ValueError, match="latent 2x2 is too small to tile with overlap=2"):
        B.validate_config(B.BenchConfig(model="wan2.1", weights="tiny", frames=5, size=(16, 16), strategy="tiled"))
