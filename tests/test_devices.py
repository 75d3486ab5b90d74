"""The one device rule, and the CUDA branches run on CPU against a faked ``torch.cuda``.

The fake records every call it receives, so these tests check the control flow of the GPU paths (which calls, in
which order, on which device) without a GPU; the numbers they return are the fake's.
"""

from __future__ import annotations

import pytest
import torch

from vaestudy import bench as B
from vaestudy.clock import Clock
from vaestudy.devices import canonical_device, canonical_name, check_device, same_device
from vaestudy.pipelines.overlap import ChunkHandoff


class FakeCuda:
    """Stands in for the parts of ``torch.cuda`` the package calls; ``calls`` is the log, in order."""

    def __init__(self, monkeypatch, *, count: int = 2, current: int = 0):
        self.calls: list[tuple] = []
        self.count, self.current = count, current
        self.clock_ms = 0.0
        self.allocated = {"now": 1000, "peak": 1000, "reserved": 4096, "peak_reserved": 4096}
        fake = self

        class Event:
            def __init__(self, enable_timing: bool = False):
                self.t = None
                fake.calls.append(("Event", enable_timing))

            def record(self, stream=None):
                fake.clock_ms += 250.0  # every recorded event is 250 ms after the previous one
                self.t = fake.clock_ms
                fake.calls.append(("record", stream))

            def synchronize(self):
                fake.calls.append(("event.synchronize",))

            def elapsed_time(self, other):
                return other.t - self.t

        class Stream:
            def __init__(self, device=None):
                self.device = device
                fake.calls.append(("Stream", str(device)))

            def wait_event(self, ev):
                fake.calls.append(("wait_event", ev))

            def synchronize(self):
                fake.calls.append(("stream.synchronize", str(self.device)))

        def stream_ctx(s):
            class Ctx:
                def __enter__(self):
                    fake.calls.append(("enter stream", s))

                def __exit__(self, *exc):
                    fake.calls.append(("exit stream", s))
            return Ctx()

        def log(name, ret=None):
            def f(*args, **kwargs):
                fake.calls.append((name, *(str(a) for a in args)))
                return ret() if callable(ret) else ret
            return f

        def max_allocated(device=None):
            fake.calls.append(("max_memory_allocated", str(device)))
            return fake.allocated["peak"]

        for name, value in {
            "is_available": lambda: True, "device_count": lambda: fake.count, "current_device": lambda: fake.current,
            "Event": Event, "Stream": Stream, "stream": stream_ctx,
            "current_stream": lambda device=None: Stream(device),
            "synchronize": log("synchronize"),
            "reset_peak_memory_stats": log("reset_peak_memory_stats"),
            "memory_allocated": log("memory_allocated", lambda: fake.allocated["now"]),
            "memory_reserved": log("memory_reserved", lambda: fake.allocated["reserved"]),
            "max_memory_allocated": max_allocated,
            "max_memory_reserved": log("max_memory_reserved", lambda: fake.allocated["peak_reserved"]),
            "get_device_name": lambda device=None: "Fake H200",
        }.items():
            monkeypatch.setattr(torch.cuda, name, value)

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


# ---- one device rule -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("a,b", [("cpu", "cpu:0"), ("cpu", torch.device("cpu")), ("cpu:0", torch.device("cpu", 0)),
                                 ("cuda", "cuda:0"), ("cuda:1", torch.device("cuda", 1))])
def test_spellings_of_one_device_are_the_same(a, b):
    assert same_device(a, b) and canonical_device(a) == canonical_device(b)


def test_canonical_names():
    assert [canonical_name(d) for d in ("cpu", "cpu:0", torch.device("cpu", 0), "cuda:1")] == ["cpu", "cpu", "cpu", "cuda:1"]
    assert not same_device("cuda:0", "cuda:1") and not same_device("cpu", "cuda:0")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "", "mps", 3])
def test_bad_device_names_the_value(bad):
    with pytest.raises(ValueError, match="device="):
        canonical_device(bad)


def test_check_device_without_cuda_says_so():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        check_device("cuda")
    assert check_device("cpu:0") == torch.device("cpu")


def test_fake_cuda_bare_cuda_is_the_current_device(monkeypatch):
    FakeCuda(monkeypatch, count=2, current=1)
    assert canonical_name("cuda") == "cuda:1" and same_device("cuda", "cuda:1")
    assert check_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"has 2 CUDA device\(s\)"):
        check_device("cuda:2")


def test_bench_accepts_every_spelling_of_the_models_device(tiny):
    """The bug of the first GPU run: 'vae is ... on cuda:0 but the config asks ... on cuda' (here cpu vs cpu:0)."""
    vae = tiny("wan2.1")
    cfg = B.validate_config(B.BenchConfig(model="wan2.1", weights="tiny", frames=5, size=(16, 16), strategy="full",
                                          device="cpu:0", repeats=1, warmup=0))
    assert cfg.device == "cpu"
    rec = B.measure(cfg, vae=vae, flops=False)
    assert rec["device"] == "cpu" and rec["env"]["device"] == "cpu"


def test_bench_still_refuses_a_model_elsewhere(tiny):
    vae = tiny("wan2.1")
    cfg = B.validate_config(B.BenchConfig(model="wan2.1", weights="tiny", frames=5, size=(16, 16), strategy="full",
                                          dtype="bfloat16", repeats=1, warmup=0))
    with pytest.raises(ValueError, match="vae is torch.float32 on cpu but the config asks bfloat16 on cpu"):
        B.measure(cfg, vae=vae, flops=False)


# ---- CUDA branches, faked -----------------------------------------------------------------------------------------
def test_fake_cuda_timer_uses_events_on_the_current_stream(monkeypatch):
    fake = FakeCuda(monkeypatch)
    t = Clock("cuda")  # a clock starts when it is made
    assert t.device == torch.device("cuda", 0) and t.cuda
    t.mark()
    t.mark()
    assert t.read() == [0.25, 0.5]  # event times (ms) / 1000, from the first event
    assert fake.names()[:2] == ["synchronize", "Event"]  # queued work ends before the first event
    assert fake.names().count("record") == 3 and fake.names()[-1] == "synchronize"  # read() waits for the events


def test_fake_cuda_peak_memory_resets_and_subtracts_the_baseline(monkeypatch):
    fake = FakeCuda(monkeypatch)
    probe = B.PeakMemory("cuda:0")
    assert probe.method == "cuda-max-allocated"
    probe.start()
    fake.allocated.update(peak=1000 + 5 * 2**20, peak_reserved=4096 + 8 * 2**20)
    out = probe.stop()
    assert out == {"peak_bytes": 5 * 2**20, "peak_reserved_bytes": 8 * 2**20}
    names = fake.names()
    assert names.index("reset_peak_memory_stats") < names.index("memory_allocated") < names.index("max_memory_allocated")
    assert ("max_memory_allocated", "cuda:0") in fake.calls


def test_fake_cuda_synchronize_only_on_cuda(monkeypatch):
    from vaestudy.clock import synchronize

    fake = FakeCuda(monkeypatch)
    synchronize("cpu:0")
    assert fake.calls == []
    synchronize("cuda:1")
    assert fake.calls == [("synchronize", "cuda:1")]


def test_fake_cuda_handoff_decodes_on_its_own_stream_after_the_generation_event(monkeypatch):
    fake = FakeCuda(monkeypatch)
    h = ChunkHandoff(torch.device("cuda", 0))
    with pytest.raises(RuntimeError, match="open_decode_stream"):
        with h.on_decode_stream(None):
            pass
    h.open_decode_stream()
    ev = h.generated()
    assert fake.names()[-3:] == ["Event", "record", "event.synchronize"]
    fake.calls.clear()
    with h.on_decode_stream(ev):
        fake.calls.append(("decode",))
        h.decoded()
    assert fake.names() == ["enter stream", "wait_event", "decode", "Stream", "stream.synchronize", "exit stream"]
    assert fake.calls[1] == ("wait_event", ev) and fake.calls[0][1] is h.stream


def test_cpu_handoff_does_nothing(monkeypatch):
    fake = FakeCuda(monkeypatch)
    h = ChunkHandoff(torch.device("cpu"))
    h.open_decode_stream()
    assert h.generated() is None
    with h.on_decode_stream(None):
        h.decoded()
    assert fake.calls == []


def test_fake_cuda_environment_names_the_card(monkeypatch):
    FakeCuda(monkeypatch)
    env = B.environment("cuda", "bfloat16")
    assert env["device"] == "cuda:0" and env["device_name"] == "Fake H200" and env["dtype"] == "bfloat16"


# ---- the roofline ------------------------------------------------------------------------------------------------
def test_machine_peak_records_the_shape_that_gave_it():
    shapes = {"matmul": (64, 128), "conv3d": ((8, 2, 8, 8),)}
    mp = B.machine_peak("cpu:0", "float32", repeats=1, shapes=shapes)
    assert [(r["op"], r["shape"]) for r in mp["rows"]] == [("matmul", "64x64x64"), ("matmul", "128x128x128"),
                                                           ("conv3d", "c8 t2 8x8")]
    best = max(mp["rows"], key=lambda r: r["flop_s"])
    assert (mp["peak_op"], mp["peak_shape"], mp["peak_flops"]) == (best["op"], best["shape"], best["flop_s"])
    assert mp["rows"][1]["flops"] == 2 * 128 ** 3  # FlopCounterMode: 2 per multiply-add
    assert mp["device"] == "cpu"
    with pytest.raises(ValueError, match="dtype='float8'"):
        B.machine_peak("cpu", "float8")


def test_machine_peak_shapes_are_sized_per_device():
    cpu, cuda = B.PEAK_SHAPES["cpu"], B.PEAK_SHAPES["cuda"]
    assert max(cuda["matmul"]) >= 8192 > max(cpu["matmul"])  # an 8192^3 bf16 matmul is what saturates an H200
    assert any(c[0] >= 384 for c in cuda["conv3d"])  # decoder-shaped: many channels at low resolution


@pytest.mark.parametrize("flops,seconds,peak,frac", [(1e12, 1.0, 4e12, 0.25), (1e12, 1.0, 1e12, 1.0), (None, 1.0, 1e12, None)])
def test_fraction_of_peak(flops, seconds, peak, frac):
    assert B.fraction_of_peak(flops, seconds, peak) == (frac, None)


def test_fraction_of_peak_above_one_is_an_error_not_a_result():
    frac, err = B.fraction_of_peak(2.26e12, 1.0, 1e12)  # the first GPU run printed 226%
    assert frac is None and "exceeds the measured peak" in err and "2.26x" in err
    rec = B.make_record(B.validate_config(B.BenchConfig(model="wan2.1", weights="tiny", frames=5, size=(16, 16),
                                                        strategy="full", repeats=1, warmup=0)),
                        [{"wall_s": 1.0, "first_frame_s": 1.0, "chunk_s": [1.0], "consumer_s": 0.0, "peak_bytes": 1,
                          "memory_method": "fake"}],
                        env={"device": "cpu"}, weights="tiny", flops=int(2.26e12), machine_peak_flops=1e12)
    assert rec["fraction_of_peak"] is None and "exceeds" in rec["peak_error"]
    text = B.format_summary([{**rec, "resumed": False}])
    assert "ERROR" in text and "%peak ERROR: achieved" in text and "226" not in text.split("%peak ERROR")[0]



# ---- every command accepts every spelling of the device ----------------------------------------------------------
@pytest.mark.parametrize("argv, expect", [
    (["decode-check", "--weights", "tiny", "--frames", "5", "--size", "32x32"], "on cpu"),
    (["probe", "--weights", "tiny", "--latent", "2", "6", "6"], "of the gradient"),
    (["bench", "--weights", "tiny", "--frames", "5", "--size", "16x16", "--strategies", "full,chunked",
      "--repeats", "1", "--warmup", "0", "--inline", "--no-flops"], "measured"),
    (["stream", "overlap", "--shares", "0.5", "--chunks", "2", "--latent-hw", "2x2"], "decode || generate"),
])
def test_cli_commands_run_with_cpu_0(argv, expect, tmp_path, capsys):
    from vaestudy.cli import main

    extra = ["--out", str(tmp_path / "b.jsonl")] if argv[0] == "bench" else []
    assert main(argv + extra + ["--device", "cpu:0"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert expect in out and "cpu:0" not in out.split("\n")[0]  # printed in the one canonical spelling


def test_cli_plan_reads_records_under_any_spelling(tmp_path, capsys):
    from test_planner import sweep_records
    from vaestudy.bench.store import ResultStore
    from vaestudy.cli import main

    store = ResultStore(tmp_path / "r.jsonl")
    for r in sweep_records(noise=0.02):
        store.append(r)
    for spelling in ("cpu", "cpu:0"):
        assert main(["plan", "--frames", "81", "--size", "480x832", "--memory-budget", "64GiB", "--device", spelling,
                     "--results", str(store.path)]) == 0, capsys.readouterr().err
        assert "cost model of wan2.1 on cpu/" in capsys.readouterr().out


def test_cli_report_accepts_cpu_0(tmp_path, monkeypatch, capsys):
    import nbformat

    from vaestudy.cli import main

    root = tmp_path / "checkout"
    (root / "notebooks").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("DEVICE = 'cpu'"), nbformat.v4.new_code_cell("print('device', DEVICE)")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "notebooks" / "01_d.ipynb")
    monkeypatch.chdir(root)
    assert main(["report", "--device", "cpu:0", "--out-dir", str(tmp_path / "out")]) == 0
    ran = nbformat.read(tmp_path / "out" / "build" / "01_d.ipynb", as_version=4)
    assert "device cpu\n" in "".join(o.get("text", "") for c in ran.cells for o in c.get("outputs", []))


def test_cli_cuda_without_cuda_is_one_clean_error(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from vaestudy.cli import main

    assert main(["decode-check", "--weights", "tiny", "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


# ---- dtype truth: "same computation" and "same numbers" are two columns -------------------------------------------
def test_bf16_table_states_its_error_against_fp32(capsys):
    from vaestudy.cli import main

    assert main(["decode-check", "--weights", "tiny", "--frames", "5", "--size", "32x32", "--dtype", "bfloat16",
                 "--device", "cpu:0"]) == 0
    out = capsys.readouterr().out
    head = next(line for line in out.splitlines() if line.startswith("strategy"))
    assert "same comp." in head and "bit-eq" in head and "vs fp32 |err|" in head
    full = next(line for line in out.splitlines() if line.startswith("full "))
    cols = full.split()
    assert cols[2:4] == ["True", "True"]  # the reference row: same computation, same numbers
    assert float(cols[6]) > 0  # bf16 vs the fp32 decode of the same weights: a measured, non-zero error


def test_strategy_table_reference_columns(tiny):
    from conftest import latent_for
    from vaestudy.decode import decode_full
    from vaestudy.guide.comparisons import strategy_table

    vae = tiny("wan2.1")
    z = latent_for(vae, 2, 4)
    ref = decode_full(vae, z).video
    rows = {r["strategy"]: r for r in strategy_table(vae, z, reference=ref, include_diffusers=False)}
    assert rows["full"]["bit_equal"] and rows["full"]["ref_max_abs"] == 0.0
    for r in rows.values():  # in fp32 with the fp32 reference, both comparisons are the same comparison
        assert r["ref_max_abs"] == r["max_abs"]
    assert rows["chunked"]["same_computation"] and not rows["chunked-naive"]["same_computation"]


# ---- make gpu-check ------------------------------------------------------------------------------------------------
def _gpu_check():
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_check_skips_cleanly_without_cuda(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert _gpu_check().main([]) == 0
    assert capsys.readouterr().out.strip() == "skipped: no CUDA device"


@pytest.mark.parametrize("gpus, backend", [(1, "gloo"), (2, "NCCL")])
def test_gpu_check_covers_every_family_and_command(tmp_path, gpus, backend):
    from vaestudy.cli import build_parser
    from vaestudy.registry.families import FAMILIES

    gc = _gpu_check()
    steps = gc.plan_steps(tmp_path, dtype="bfloat16", gpus=gpus, notebooks=True)
    names = [n for n, _ in steps]
    for fam in FAMILIES:
        assert f"decode-check {fam}" in names and f"bench {fam}" in names
    assert {"probe wan2.1", "plan wan2.1", "stream overlap (CUDA stream)", "report --device cuda (FAST)"} <= set(names)
    assert {"decode-check wan2.1 float32", "decode-check wan2.1 float16"} <= set(names)  # bf16 is the default run
    assert f"stream two-device ({backend})" in names and f"stream split ({backend})" in names
    parser = build_parser()
    for name, argv in steps:  # every step is a valid command line (family frame rules included)
        args = parser.parse_args(argv[3:])
        if args.command in ("decode-check", "bench"):
            FAMILIES[args.model].check_frames(int(str(args.frames).split(",")[0]))
