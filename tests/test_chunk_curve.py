"""The chunk-size curve: which chunks are swept, the knee's definition, the seed's point, and a sweep that resumes."""

from __future__ import annotations

import pytest

from vaestudy.bench.chunk_curve import (
    KNEE_FRACTION,
    cached_families,
    chunk_curve,
    chunk_sizes,
    curve_configs,
    curve_table,
    knee,
    points,
    seed_point,
    seed_reference,
)
from vaestudy.bench.reference import load_reference
from vaestudy.bench.store import ResultStore
from vaestudy.cli import main
from vaestudy.registry import FAMILIES, exemplar

EXACT = exemplar("exact stream").name


def _pts(fps: dict[int, float]) -> list[dict]:
    return [{"chunk": k, "fps": v} for k, v in fps.items()]


def test_knee_is_the_smallest_chunk_reaching_the_fraction_of_the_best():
    assert knee(_pts({1: 50.0, 2: 89.0, 3: 90.0, 4: 100.0})) == 3  # 90 >= 0.9 * 100, 89 is not
    assert knee(_pts({1: 100.0, 2: 60.0})) == 1  # the best may be the smallest
    assert knee(_pts({1: 10.0, 2: 20.0}), fraction=1.0) == 2
    assert knee([]) is None
    assert KNEE_FRACTION == 0.9
    with pytest.raises(ValueError, match="fraction"):
        knee(_pts({1: 1.0}), fraction=0)


def test_swept_chunks_follow_each_family_rule():
    assert cached_families() == [f.name for f in FAMILIES.values() if f.streamable]
    for name in cached_families():
        f = FAMILIES[name]
        ks = chunk_sizes(f, 6)
        assert ks and max(ks) <= 6
        for k in range(1, 7):
            try:
                f.check_chunk(k)
                valid = True
            except ValueError:
                valid = False
            assert (k in ks) == valid, (name, k)
    assert chunk_sizes(FAMILIES[EXACT], 5, up_to=2) == [1, 2]


def test_configs_refuse_families_without_a_cache_and_bad_frames():
    uncached = next(f.name for f in FAMILIES.values() if not f.streamable)
    with pytest.raises(ValueError, match="no temporal cache"):
        curve_configs([uncached], frames=9, size=(16, 16))
    with pytest.raises(ValueError, match="frames=10"):
        curve_configs([EXACT], frames=10, size=(16, 16))
    cfgs = curve_configs([EXACT], frames=9, size=(16, 16))
    assert [c.chunk for c in cfgs] == [1, 2, 3] and {c.consumer for c in cfgs} == {"discard"}


def test_seed_point_reads_the_reference_and_sits_at_the_seed_chunk():
    ref = seed_reference()
    rec = next(a for a in load_reference("h200-2026-11-29")["anchors"] if "steady_median_s" in a)
    assert ref["steady_s"] == rec["steady_median_s"] and ref["first_chunk_s"] == rec["first_chunk_s"]
    seed = {"latent_frames_per_chunk": 2, "decode_ms_per_chunk": 50.0, "size": (8, 8)}
    curve = {"a": [dict(p, knee=False) for p in _pts({1: 50.0, 2: 80.0, 3: 100.0})], "b": _pts({1: 10.0})}
    rows = {r["model"]: r for r in seed_point(curve, seed, ref)}
    assert rows["a"]["ours"]["chunk"] == 2 and rows["a"]["fps_share_of_best"] == 0.8
    assert rows["a"]["at_or_past_knee"] is False  # knee at 3 (100 * 0.9 = 90 > 80)
    assert rows["b"]["ours"] is None and rows["b"]["fps_share_of_best"] is None
    assert rows["a"]["seed_chunk_s"] == 0.05 and rows["a"]["reference_chunk_s"] == ref["steady_s"]


@pytest.mark.slow
def test_sweep_writes_as_it_goes_and_resumes(tmp_path):
    store = tmp_path / "curve.jsonl"
    kw = {"frames": 9, "size": (16, 16), "weights": "tiny", "repeats": 1, "warmup": 0, "max_chunk": 2}
    first = chunk_curve([EXACT], store=store, **kw)
    assert [p["chunk"] for p in first[EXACT]] == [1, 2]
    assert len(ResultStore(store).load()) == 2 and not any(p["resumed"] for p in first[EXACT])
    again = chunk_curve([EXACT], store=store, **kw)  # nothing left to measure: every point comes from the store
    assert all(p["resumed"] for p in again[EXACT]) and len(ResultStore(store).load()) == 2
    assert [p["fps"] for p in again[EXACT]] == [p["fps"] for p in first[EXACT]]
    assert sum(p["knee"] for p in again[EXACT]) == 1
    assert "<- knee" in curve_table(again)
    longer = chunk_curve([EXACT], store=store, **dict(kw, max_chunk=3))  # a stopped sweep continues: one new point
    assert [p["resumed"] for p in longer[EXACT]] == [True, True, False] and len(ResultStore(store).load()) == 3


def test_points_turn_records_into_curves():
    rec = {"model": "m", "chunk": 2, "first_frame_s": {"median": 0.1}, "wall_s": {"median": 1.0, "min": 0.9, "max": 1.2},
           "fps": 9.0, "peak_bytes": 10, "chunk_s_steady_median": 0.2, "chunks": 3, "frames": 9, "size": [16, 16],
           "device": "cpu"}
    pts = points([rec, dict(rec, chunk=1, fps=5.0)])["m"]
    assert [p["chunk"] for p in pts] == [1, 2] and [p["knee"] for p in pts] == [False, True]
    assert pts[1]["first_frame_s"] == 0.1 and pts[1]["wall_min_s"] == 0.9


def test_cli_refuses_bad_options_naming_them(capsys):
    uncached = next(f.name for f in FAMILIES.values() if not f.streamable)
    for argv, name in ((["chunk-curve", "--models", uncached], "no temporal cache"),
                       (["chunk-curve", "--frames", "10"], "frames=10"), (["chunk-curve", "--size", "a"], "size="),
                       (["chunk-curve", "--max-chunk", "0"], "max_chunk=0")):
        assert main(argv) == 2, argv
        assert name in capsys.readouterr().err, argv
