"""The GPU reference records in reference/: every file loads, its provenance fields are there and agree with each
other, across files and with the folder's README (device, dtype, torch, diffusers, date, record counts)."""

import json
import re
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "h200-2026-11-29"
DATE = "2026-11-29"  # the folder's name
FILES = ("README.md", "MEASURER_NOTES.md", "bench.jsonl", "anchors.jsonl", "levers.json", "peak.json")


def _jsonl(name: str) -> list[dict]:
    """One dict per non-empty line; a line that is not a JSON object fails with its file and line number."""
    records = []
    for i, line in enumerate((REFERENCE / name).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            rec = json.loads(line)
            assert isinstance(rec, dict), f"{name}:{i} is not a JSON object"
            records.append(rec)
    return records


def _readme_field(name: str) -> str:
    """The value of a row ``| name | value |`` of the README's provenance table."""
    m = re.search(rf"^\| {re.escape(name)} \| (.+?) \|$", (REFERENCE / "README.md").read_text(encoding="utf-8"), re.M)
    assert m, f"README.md has no '| {name} | ... |' row"
    return m.group(1)


@pytest.fixture(scope="module")
def bench():
    return _jsonl("bench.jsonl")


@pytest.fixture(scope="module")
def anchors():
    return _jsonl("anchors.jsonl")


def test_every_file_is_there():
    missing = [f for f in FILES if not (REFERENCE / f).is_file()]
    assert not missing, f"missing in {REFERENCE}: {missing}"


def test_the_readme_counts_the_records_it_describes(bench, anchors):
    text = (REFERENCE / "README.md").read_text(encoding="utf-8")
    stated = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\| `([\w.]+)` \| (\d+) \|", text, re.M)}
    assert stated == {"bench.jsonl": len(bench), "anchors.jsonl": len(anchors), "levers.json": 1, "peak.json": 1}


def test_bench_records_name_one_h200_run_in_bf16(bench):
    assert len(bench) == 11
    for r in bench:
        where = f"bench.jsonl {r.get('model')}/{r.get('strategy')}"
        env = r["env"]
        assert "H200" in env["device_name"] and r["device"] == env["device"] == "cuda:0", where
        assert r["dtype"] == env["dtype"] == "bfloat16", where
        assert r["weights"] == r["weights_source"] == "random" and r["seed"] == 0, where
        assert r["timestamp"].startswith(DATE) and r["run_id"].startswith(DATE.replace("-", "")), where
        assert r["memory_method"] == "cuda-max-allocated" and r["peak_bytes"] > 0, where
        assert len(r["wall_s_all"]) == r["repeats"] == 2 and r["warmup"] == 1, where
        assert r["wall_s"]["min"] <= r["wall_s"]["median"] <= r["wall_s"]["max"], where
    # one machine and software stack throughout, the one the README names
    assert len({json.dumps({k: v for k, v in r["env"].items() if k != "loadavg"}, sort_keys=True) for r in bench}) == 1
    env = bench[0]["env"]
    assert _readme_field("torch").startswith(env["torch"]) and _readme_field("diffusers") == env["diffusers"]
    assert "H200" in _readme_field("device") and _readme_field("dtype") == env["dtype"]
    assert _readme_field("date").startswith(DATE)
    assert {r["model"] for r in bench} == {"wan2.1", "cogvideox", "hunyuanvideo", "ltx-video"}


def test_anchor_records_name_the_h200_and_bf16(anchors):
    assert len(anchors) == 6 and sorted(r["part"] for r in anchors) == ["A"] * 4 + ["B"] * 2
    for r in anchors:
        assert "H200" in r["device"] and r["dtype"] in ("torch.bfloat16", "bfloat16"), r["what"]
        measured = [r[k] for k in r if k.endswith(("_s", "_bytes"))]  # seconds or bytes, every one positive
        assert measured and all(v > 0 for v in measured), r["what"]
        for lo, mid, hi in (("min_s", "median_s", "max_s"), ("steady_min_s", "steady_median_s", "steady_max_s")):
            if mid in r:
                assert r[lo] <= r[mid] <= r[hi], r["what"]


def test_the_files_agree_with_each_other(bench, anchors):
    levers = json.loads((REFERENCE / "levers.json").read_text(encoding="utf-8"))
    peak = json.loads((REFERENCE / "peak.json").read_text(encoding="utf-8"))
    assert set(levers) == {"eager_s", "compile_first_call_s", "compiled_s", "compiled_maxabs"}
    assert 0 < levers["compiled_s"] < levers["compile_first_call_s"]
    assert peak["matmul_tflops"] > 0 and all(v > 0 for v in peak.values())
    wan_full = next(r for r in bench if r["model"] == "wan2.1" and r["strategy"] == "full")
    # the same eager decode (Wan 2.1, 81x480x832, bf16) timed by two scripts in one session
    assert levers["eager_s"] == pytest.approx(wan_full["wall_s"]["median"], rel=0.02)
    assert {r["model_bytes"] for r in anchors if "model_bytes" in r} == {wan_full["model_bytes"]}
    for r in bench:
        if r["flops"] is not None:  # FLOP/s is FLOPs over the median time, and no decode beats the matmul peak
            assert r["flops_per_s"] == pytest.approx(r["flops"] / r["wall_s"]["median"], rel=0.01)
            assert r["flops_per_s"] < peak["matmul_tflops"] * 1e12


def test_the_package_reads_the_shipped_reference():
    """vaestudy.bench.load_reference reads the same files this module checks, and refuses an unknown name."""
    from vaestudy.bench.reference import load_reference, reference_names

    assert "h200-2026-11-29" in reference_names()
    ref = load_reference("h200-2026-11-29")
    assert len(ref["bench"]) == len(_jsonl("bench.jsonl")) and ref["peak"] == json.loads((REFERENCE / "peak.json").read_text())
    assert all(r["source"] == "reference/h200-2026-11-29" for r in ref["bench"])
    with pytest.raises(ValueError, match="reference='a100'"):
        load_reference("a100")
