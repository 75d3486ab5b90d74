"""Pipelines: bounded queues, decode || generation, encode/decode on two ranks, split decode.

The distributed tests start 2 gloo ranks on 127.0.0.1 with torch.multiprocessing (fork: the ranks
reuse this process's imports, seconds instead of tens of seconds on a loaded machine); one test
goes through the real ``vaestudy stream`` CLI and torchrun to check that a failing rank ends the
run with an error naming it.
"""

import math
import statistics
import threading
import time
from pathlib import Path

import pytest
import torch

from vaestudy import pipelines as P
from vaestudy.pipelines import split as S
from vaestudy.pipelines.distributed import launch_local

# a halo that covers the whole latent reproduces the one-process decode up to float reordering
# (the one-process reference may use a different thread count): 1e-5 in [-1, 1] units, 1/250 of
# one 8-bit level
SPLIT_TOL = 1e-5


# ---- bounded queues ---------------------------------------------------------------------------
def test_backpressure_never_exceeds_bound():
    q = P.BoundedQueue(3, "block", "t")
    got = []

    def consumer():
        for _ in range(20):
            time.sleep(0.002)
            got.append(q.get(timeout=5))

    th = threading.Thread(target=consumer)
    th.start()
    for i in range(20):
        assert q.put(i, timeout=5) is True  # block never drops
    th.join(5)
    assert got == list(range(20))
    assert q.max_depth <= 3 and all(d <= 3 for _, d in q.log)
    assert q.max_depth == 3 and q.blocked_s > 0  # the producer really was held back
    assert q.dropped == []


def test_drop_policies_drop_and_count():
    q = P.BoundedQueue(2, "drop", "t")
    kept = [q.put(f"w{i}", key=i) for i in range(5)]
    assert kept == [True, True, False, False, False]
    assert q.dropped == [2, 3, 4] and len(q) == 2 and q.max_depth == 2
    assert [q.get()[0] for _ in range(2)] == [0, 1]
    q = P.BoundedQueue(2, "drop-oldest", "t")
    for i in range(5):
        q.put(f"w{i}", key=i)
    assert q.dropped == [0, 1, 2] and [q.get()[0] for _ in range(2)] == [3, 4]
    assert q.summary()["dropped"] == 3


@pytest.mark.parametrize("bad", [dict(capacity=0), dict(capacity=2, policy="spill")])
def test_queue_rejects_bad_settings(bad):
    with pytest.raises(ValueError, match="capacity|policy"):
        P.BoundedQueue(**bad)


# ---- decode || generation ---------------------------------------------------------------------
def test_overlap_model_bounds():
    m = P.overlap_model(0.3, 0.1, every=0)
    assert m["sequential_s"] == pytest.approx(0.4) and m["overlapped_s"] == pytest.approx(0.3)
    m = P.overlap_model(0.1, 0.3, every=0)
    assert m["overlapped_s"] == pytest.approx(0.3)  # decode-bound: max(G, D)
    # the next chunk needs the whole decoded chunk every time: nothing is hidden
    assert P.overlap_model(0.3, 0.1, 0.05, every=1, critical=1.0)["gain"] == pytest.approx(0.0)
    # shared compute with no spare capacity: nothing is hidden either
    assert P.overlap_model(0.3, 0.1, every=0, contention=1.0)["gain"] == pytest.approx(0.0)
    # perfect hiding of decode alone is the ceiling: D / (1 - D) with D the decode share, whatever the recompute
    assert P.scope_ceiling(0.2, 0.3, critical=0.0)["gain"] == pytest.approx(0.2 / 0.8)
    assert P.scope_ceiling(0.2, 0.3, critical=1.0)["gain"] == pytest.approx(0.0)  # all of it waited for
    for bad in ({"decode_share": 1.2, "decode_plus_recompute": 1.3}, {"decode_share": 0.3, "decode_plus_recompute": 0.2}):
        with pytest.raises(ValueError, match="decode_"):
            P.scope_ceiling(**bad)
    with pytest.raises(ValueError, match="critical"):
        P.overlap_model(1, 1, critical=2)


def test_run_overlap_timelines(tiny):
    vae = tiny("wan2.1")
    gen = P.GeneratorStandIn(steps=1, width=8, upscale=1)
    for mode in ("sequential", "overlapped"):
        run = P.run_overlap(vae, gen, chunks=3, latent_hw=(2, 2), mode=mode, threads=1)
        dec = sorted((s for s in run.spans if s.lane == "decode"), key=lambda s: s.chunk)
        gen_ = sorted((s for s in run.spans if s.lane == "generate"), key=lambda s: s.chunk)
        assert [s.chunk for s in dec] == [0, 1, 2] and len(gen_) == 3
        assert all(d.start >= g.end - 1e-6 for d, g in zip(dec, gen_))  # decode N after generate N
        if mode == "sequential":
            assert all(g.start >= d.end - 1e-6 for g, d in zip(gen_[1:], dec))  # strictly one after the other
        assert run.threads == {"generate": 1, "decode": 1} and len(run.latency_s) == 3
    run = P.run_overlap(vae, gen, chunks=3, latent_hw=(2, 2), mode="overlapped", threads=1, every=1)
    rec = sorted((s for s in run.spans if s.lane == "recompute"), key=lambda s: s.chunk)
    dec = {s.chunk: s for s in run.spans if s.lane == "decode"}
    assert [s.chunk for s in rec] == [1, 2]
    assert all(r.start >= dec[r.chunk - 1].end - 1e-6 for r in rec)  # the dependency is honoured


def test_run_overlap_rejects_bad_input(tiny):
    vae = tiny("wan2.1")
    with pytest.raises(ValueError, match="mode"):
        P.run_overlap(vae, P.GeneratorStandIn(steps=0), mode="parallel")
    with pytest.raises(ValueError, match="share"):
        P.steps_for_share(0.1, 0.01, 1.5)
    with pytest.raises(ValueError, match="latent_frames=1 is invalid for cogvideox"):
        P.run_overlap(tiny("cogvideox"), P.GeneratorStandIn(steps=0), latent_frames=1)


# ---- split decode (pure parts) ----------------------------------------------------------------
def test_split_plan_and_assembly():
    plan = S.split_plan(8, 2, 2)
    assert [(p.own_start, p.own_stop, p.in_start, p.in_stop) for p in plan] == [(0, 4, 0, 6), (4, 8, 2, 8)]
    video = torch.randn(1, 3, 2, 4, 64)
    for blend in S.BLEND_MODES:
        pieces = [video[..., p.in_start * 8:p.in_stop * 8] for p in plan]
        assert torch.allclose(S.assemble(pieces, plan, 8, blend), video, atol=1e-6)
    with pytest.raises(ValueError, match="halo"):
        S.split_plan(8, 2, -1)
    assert S.rf_halos([0.5, 0.3, 0.15, 0.05]) == {"rf90": 2, "rf95": 2, "rf99": 3}


# ---- two ranks --------------------------------------------------------------------------------
@pytest.mark.slow  # starts ranks

def test_two_device_backpressure_two_ranks():
    rec = launch_local("two-device", {"windows": 3, "window": 5, "size": [16, 16], "fps": 20.0, "clip": "random",
                                      "send_queue": 1, "recv_queue": 1, "send_policy": "block",
                                      "decode_delay_s": 0.3}, timeout_s=240)
    assert rec["backend"] == "gloo" and rec["world"] == 2
    assert rec["dropped_windows"] == [] and rec["shown_frames"] == 15  # block never drops a window
    for q in rec["queues"].values():
        assert q["max_depth"] <= q["capacity"]
        assert all(d <= q["capacity"] for _, d in q["log"])
    assert rec["queues"]["send queue"]["max_depth"] == 1
    assert all(0 < lat < 30 for lat in rec["latency_all_s"])
    for w in rec["windows"]:  # stage times are durations of this run, not clock readings
        assert 0 < w["decode_first_s"] <= w["decode_s"] < 30 and 0 < w["encode_s"] < 30 and w["transfer_s"] >= 0
    assert rec["budget"]["total"] > 0 and math.isfinite(rec["median"]["transfer_s"])


@pytest.mark.slow  # starts ranks

def test_two_device_drop_policy_two_ranks():
    rec = launch_local("two-device", {"windows": 10, "window": 5, "size": [16, 16], "fps": 50.0, "clip": "random",
                                      "send_queue": 1, "recv_queue": 1, "send_policy": "drop", "window_queue": 1,
                                      "decode_delay_s": 0.5}, timeout_s=240)
    dropped = rec["dropped_windows"]
    assert len(dropped) >= 1  # a decoder 0.5 s per window cannot keep up with a window every 0.1 s
    shown = sorted({f["window"] for f in rec["frames"]})
    assert set(shown).isdisjoint(dropped) and len(shown) + len(dropped) == rec["captured_windows"] == 10
    assert rec["queues"]["send queue"]["dropped"] + rec["queues"]["window buffer"]["dropped"] == len(dropped)
    assert all(q["max_depth"] <= q["capacity"] for q in rec["queues"].values())


def _no_leftovers(tmp: Path) -> list[str]:
    """What a run left in its TMPDIR (torchinductor_<user> is torch's own persistent compile cache, not a leftover)."""
    return sorted(p.name for p in tmp.iterdir() if not p.name.startswith("torchinductor_"))


def _private_tmpdir(tmp_path, monkeypatch) -> None:
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR


@pytest.mark.slow  # starts ranks
def test_split_decode_two_ranks_matches_one_process(tmp_path, monkeypatch):
    """Two ranks match one process within the halo's promise, and launch_local removes what it created."""
    _private_tmpdir(tmp_path, monkeypatch)
    # spawn, not fork: the reference is also timed with 2 threads, and a forked child that uses more than one
    # OpenMP thread hangs once the parent (the pytest process) has used its own thread pool
    rec = launch_local("split", {"latent": [2, 4, 8], "halos": [0, 2, "rf99", "full"], "threads": 1}, timeout_s=240,
                       start_method="spawn")
    rows = {r["halo_label"]: r for r in rec["rows"]}
    assert rec["world"] == 2 and rec["full_halo"] == 4
    assert rows["full"]["covers_latent"] and rows["full"]["max_abs"] <= SPLIT_TOL
    # tiny Wan: the mid-block attention spreads 99% of the gradient mass over the whole 8-column latent,
    # so the receptive-field halo covers it and must be exact; a narrower one would only be approximate
    rf = rows["rf99"]
    assert rf["halo"] == min(rec["rf"]["rf99"], 4)
    assert rf["covers_latent"] and rf["max_abs"] <= SPLIT_TOL
    assert rows["0"]["max_abs"] > 1e-2 and rows["2"]["max_abs"] > SPLIT_TOL  # the seam is real below that
    assert rows["2"]["max_abs"] < rows["0"]["max_abs"]
    for r in rec["rows"]:  # speed-up: the one-process reference time over the median split time, per halo
        assert r["speedup"] == pytest.approx(statistics.median(rec["single_s"]) / statistics.median(r["total_s"]))
    assert _no_leftovers(tmp_path) == []


@pytest.mark.slow  # starts ranks

def test_cli_stream_failure_names_rank(capsys):
    """The torchrun path: rank 1 fails, torchrun stops rank 0, the CLI reports rank 1 and returns 1."""
    from vaestudy.cli import main

    t = time.perf_counter()
    code = main(["stream", "two-device", "--fail-rank", "1", "--windows", "1", "--size", "16x16", "--clip", "random",
                 "--timeout", "300", "--deadline", "600"])
    err = capsys.readouterr().err
    assert code == 1
    assert "failed on rank 1" in err and "injected failure" in err
    assert time.perf_counter() - t < 300  # ended by the failure, not by rank 0's collective timeout


@pytest.mark.slow  # starts ranks

def test_hung_rank_times_out_instead_of_hanging():
    """A rank that stops answering: the other rank's collective times out (timeout_s=3) and the run ends."""
    from torch.multiprocessing import ProcessRaisedException

    with pytest.raises(ProcessRaisedException, match="(?i)timed? ?out|timeout") as info:
        launch_local("split", {"latent": [1, 2, 4], "halos": [0], "fail_rank": 1, "fail_mode": "hang"}, timeout_s=3)
    assert "rank(s) 1 stopped answering" in str(info.value)  # the hung rank is named, not only rank 0's timeout


@pytest.mark.slow  # starts ranks

def test_two_device_cogvideox_windows_two_ranks():
    """CogVideoX streams in even chunks after an odd first one; windows of 9 frames decode to 9 frames each."""
    rec = launch_local("two-device", {"model": "cogvideox", "windows": 2, "window": 9, "size": [16, 16], "fps": 40.0,
                                      "clip": "random"}, timeout_s=240)
    assert rec["shown_frames"] == 18 and rec["dropped_windows"] == []


@pytest.mark.slow  # starts ranks
def test_a_failing_rank_ends_the_run_with_its_error_and_leaves_no_temporary_folders(tmp_path, monkeypatch):
    """launch_local and launch (torchrun) stop the survivors of a failed rank (not left waiting for their timeout),
    raise its error, and remove what they created (success: test_split_decode_two_ranks_matches_one_process)."""
    from torch.multiprocessing import ProcessRaisedException

    from vaestudy.pipelines.distributed import DistributedRunError, launch

    _private_tmpdir(tmp_path, monkeypatch)
    cfg, timeout_s = {"latent": [1, 2, 4], "halos": [0], "threads": 1, "fail_rank": 1}, 120
    t = time.perf_counter()
    with pytest.raises(ProcessRaisedException, match="injected failure on rank 1"):
        launch_local("split", cfg, timeout_s=timeout_s)
    assert time.perf_counter() - t < timeout_s
    with pytest.raises(DistributedRunError, match="injected failure on rank 1"):
        launch("split", cfg, timeout_s=timeout_s, deadline_s=300)
    assert _no_leftovers(tmp_path) == []


def test_overlap_table_shows_the_share_asked_for_beside_the_one_measured():
    row = {"target_share": 0.5, "share": 0.4, "gen_steps": 3, "G_s": 0.3, "D_s": 0.2, "seq_period_s": 0.5,
           "bound_seq_s": 0.5, "ovl_period_s": 0.35, "bound_ovl_s": 0.3, "gain": 0.43, "bound_gain": 0.67,
           "gen_slowdown": 1.1, "decode_slowdown": 1.2, "latency_seq_s": 0.5, "latency_ovl_s": 0.6}
    head, _, line = P.format_overlap_rows([row]).splitlines()
    assert head.split()[:2] == ["target", "share"] and line.split()[:2] == ["0.50", "0.40"]


def test_torchrun_failures_name_the_rank_that_caused_them():
    """Peers of a failed rank fail next (timeouts, resets): the report names the cause, and a hung rank by silence."""
    from vaestudy.pipelines.distributed import _rank_error_lines, blame

    log = ("[vaestudy rank 1] two-device failed:\nTraceback (most recent call last):\n  File x\n"
           "RuntimeError: injected failure on rank 1\n"
           "[vaestudy rank 0] two-device failed:\nTraceback (most recent call last):\n"
           "TimeoutError: send queue: no room for 3 s (timed out)\n")
    errors = _rank_error_lines(log)
    assert errors == {1: "RuntimeError: injected failure on rank 1", 0: "TimeoutError: send queue: no room for 3 s (timed out)"}
    assert blame(errors, 2, 3) == "rank 1"  # not "rank 0, 1": rank 0 only timed out waiting for rank 1
    hung = {0: errors[0]}  # rank 1 hung: it printed nothing, rank 0 timed out
    assert blame(hung, 2, 3).startswith("rank 1 (stopped answering") and "rank 0 timed out waiting" in blame(hung, 2, 3)
    assert blame({}, 2, 3) == "a rank"
