"""`vaestudy plan` on the GPU records shipped in reference/h200-2026-11-29 (one shape per family, H200, bf16,
random full-size weights): it plans from them, says which records it used, refuses to mix them with another
device's, and warns whenever a request leaves the one shape they measured."""

import json
from pathlib import Path

import pytest

from vaestudy.bench import planner as P
from vaestudy.cli import main, reference_records

NAME = "h200-2026-11-29"
BENCH = Path(__file__).resolve().parents[1] / "reference" / NAME / "bench.jsonl"


@pytest.fixture(scope="module")
def records():
    return [json.loads(line) for line in BENCH.read_text().splitlines() if line.strip()]


def measured_shapes(records):
    """family -> (frames, (H, W)) of its records: the reference measures one shape per family."""
    shapes = {}
    for r in records:
        shapes.setdefault(r["model"], set()).add((r["frames"], tuple(r["size"])))
    assert all(len(s) == 1 for s in shapes.values()), shapes
    return {m: next(iter(s)) for m, s in shapes.items()}


def plan_output(capsys, *args):
    rc = main(["plan", "--reference", NAME, *args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_the_name_resolves_to_the_shipped_records():
    assert reference_records(NAME) == BENCH
    with pytest.raises(ValueError, match=rf"reference='h100'.*valid: .*{NAME}"):
        reference_records("h100")
    with pytest.raises(ValueError, match="reference="):
        reference_records(f"../reference/{NAME}")


def test_plan_at_the_measured_shape_says_what_it_used_and_warns_of_nothing_but_setups(capsys, records):
    frames, (h, w) = measured_shapes(records)["wan2.1"]
    rc, out, _ = plan_output(capsys, "--model", "wan2.1", "--frames", str(frames), "--size", f"{h}x{w}",
                             "--memory-budget", "8GiB")
    assert rc == 0
    n = sum(r["model"] == "wan2.1" for r in records)
    assert f"records: {n} of {len(records)} records (left out: {len(records) - n} of other families)" in out
    assert "on cuda:0/bfloat16 (NVIDIA H200), random weights" in out
    assert f"measured range: frames {frames}, {h}x{w} ({h * w:,} px per frame)" in out
    assert "within the measured range only" in out
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert all("setup:" in line for line in warnings), warnings  # never frames, pixels or model size here


@pytest.mark.parametrize("family", ["wan2.1", "cogvideox", "hunyuanvideo", "ltx-video"])
def test_every_family_plans_from_the_reference_and_the_answer_is_a_table_row(capsys, records, family):
    frames, (h, w) = measured_shapes(records)[family]
    rc, out, _ = plan_output(capsys, "--model", family, "--frames", str(frames), "--size", f"{h}x{w}",
                             "--memory-budget", "64GiB", "--top", "1")
    assert rc == 0
    answer = next(line for line in out.splitlines() if line.startswith("recommended: "))
    best = answer[len("recommended: "):].split(" — ")[0]
    starred = [line for line in out.splitlines() if line.startswith("* ")]
    assert len(starred) == 1 and starred[0][2:].startswith(best + " ")


def test_a_request_outside_the_measured_shape_is_warned_about(capsys, records):
    frames, (h, w) = measured_shapes(records)["wan2.1"]
    rc, out, _ = plan_output(capsys, "--model", "wan2.1", "--frames", str(2 * frames - 1), "--size", "720x1280",
                             "--memory-budget", "8GiB", "--target-weights", "tiny")
    assert rc in (0, 1)
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert any(f"{2 * frames - 1} frames" in x and f"only {frames} frames" in x for x in warnings), warnings
    assert any("720x1280 = 921,600 px" in x and f"only {h * w:,} px: {h}x{w}" in x for x in warnings), warnings
    assert any("tiny weights" in x and "random (full-size)" in x for x in warnings), warnings
    assert "warning(s) above" in out


def test_another_device_is_refused_and_named(capsys):
    rc, _, err = plan_output(capsys, "--device", "cpu")
    assert rc == 2 and "device=cpu" in err and "cuda:0 NVIDIA H200 bfloat16 random x4" in err
    rc, _, err = plan_output(capsys, "--hardware", "A100")
    assert rc == 2 and "hardware=A100" in err


def test_records_of_two_devices_in_one_file_are_not_mixed(tmp_path, capsys, records):
    cpu = [dict(r, device="cpu", dtype="float32", env={"threads": 2, "device_name": "Some CPU"})
           for r in records if r["model"] == "wan2.1"]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records + cpu))
    assert main(["plan", "--records", str(path)]) == 2
    assert "mix" in capsys.readouterr().err
    assert main(["plan", "--records", str(path), "--device", "cuda:0", "--memory-budget", "64GiB"]) == 0
    out = capsys.readouterr().out
    assert f"left out: {len(records) - len(cpu)} of other families, {len(cpu)} from devices other than cuda:0" in out
    cm = P.fit_cost_model(records + cpu, "wan2.1", hardware="H200")
    assert cm.hardware == "NVIDIA H200" and cm.pooled_time.n == len(cpu)


def test_one_source_of_records(tmp_path, capsys):
    with pytest.raises(SystemExit):  # argparse: --records and --reference exclude each other
        main(["plan", "--reference", NAME, "--records", str(tmp_path / "x.jsonl")])
    assert "not allowed with" in capsys.readouterr().err


def test_bad_input_fails_before_the_records_are_read(capsys, monkeypatch):
    def no_fit(*a, **k):
        raise AssertionError("fitted despite bad input")

    monkeypatch.setattr(P, "fit_cost_model", no_fit)
    for args, text in ((["--memory-budget", "8"], "needs a unit"), (["--size", "480x"], "size='480x'"),
                       (["--frames", "80"], "80"), (["--top", "0"], "top=0")):
        rc, _, err = plan_output(capsys, *args)
        assert rc == 2 and text in err, (args, err)
