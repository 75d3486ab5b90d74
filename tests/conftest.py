import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


REPO = Path(__file__).resolve().parents[1]
SUITE_TIMEOUT_S = 45 * 60  # FAST on an idle 2-core machine: about 6 min; under heavy load several times that
SUITE_JOBS = 2  # notebooks at once, one kernel thread each on this 2-core machine kind (their timings are not read)
_SUITE: dict = {}


def _start_suite() -> None:
    """Execute every notebook once, as a reader's ``vaestudy report`` would, in a background process."""
    out = Path(tempfile.mkdtemp(prefix="vaestudy-suite-"))
    log = open(out / "report.log", "wb")
    # the two notebooks that re-measure across the suite (the study guide and the index) are the longest: started
    # first, they do not end the run alone; the others follow, last file first
    names = sorted((p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")), reverse=True)
    order = sorted(names, key=lambda n: not n.endswith(("_study_guide.ipynb", "_index.ipynb")))
    proc = subprocess.Popen([sys.executable, "-m", "vaestudy", "report", "--fast", "--jobs", str(SUITE_JOBS),
                             "--out-dir", str(out), "--notebooks", *order],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    _SUITE.update(out=out, log=log, proc=proc, started=time.monotonic())


@pytest.hookimpl(trylast=True)  # after -m/-k deselection: start the notebooks only when a selected test needs them
def pytest_collection_modifyitems(session, config, items):
    """Tests of the executed notebooks run last; the notebooks execute meanwhile, beside the unit tests."""
    needs = [i for i in items if "suite" in getattr(i, "fixturenames", ())]
    if needs and not _SUITE:
        items[:] = [i for i in items if "suite" not in getattr(i, "fixturenames", ())] + needs
        _start_suite()
        # the notebooks' kernels run one thread each (report --jobs); one here too: three busy threads on this
        # 2-core machine kind waste less in OpenMP spin-waits than four
        torch.set_num_threads(1)


def pytest_sessionfinish(session, exitstatus):
    if _SUITE:
        if _SUITE["proc"].poll() is None:
            _SUITE["proc"].kill()
        _SUITE["log"].close()
        if exitstatus == 0 and not os.environ.get("VAESTUDY_KEEP_SUITE"):
            shutil.rmtree(_SUITE["out"], ignore_errors=True)
        else:  # failed, or asked for: e.g. to refresh check-cell references with scripts/clean_notebook.py
            print(f"\nexecuted notebooks, pages and the report log are kept in {_SUITE['out']}")


@pytest.fixture(scope="session")
def suite():
    """Every notebook executed once per test session (``vaestudy report --fast``, started at collection).

    The notebook checks (test_notebooks.py) and the pages opened in Chromium (test_browser.py) share this one
    execution. Returns (output folder, {stem: executed notebook}, reports/summary.json).
    """
    if not _SUITE:
        _start_suite()
    proc, out = _SUITE["proc"], _SUITE["out"]
    try:
        code = proc.wait(timeout=max(1.0, SUITE_TIMEOUT_S - (time.monotonic() - _SUITE["started"])))
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"vaestudy report did not finish in {SUITE_TIMEOUT_S} s; log: {out / 'report.log'}")
    log = (out / "report.log").read_text(errors="replace")
    summary_path = out / "reports" / "summary.json"
    if not summary_path.exists():
        pytest.fail(f"vaestudy report exited {code} without a summary:\n{log[-3000:]}")
    summary = json.loads(summary_path.read_text())
    executed = {p.stem: nbformat.read(p, as_version=4) for p in sorted((out / "build").glob("*.ipynb"))}
    failed = [f"{r['stem']}: {r['status']}" for r in summary["notebooks"] if not r["status"].startswith("ok")]
    assert (code == 0) == (not failed), f"vaestudy report exited {code}, failed notebooks {failed}:\n{log[-3000:]}"
    return out, executed, summary


@pytest.fixture(scope="session")
def tiny():
    """Tiny random-weight models of each family, built once per test session."""
    from vaestudy.registry.load import load_vae

    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = load_vae(name, "tiny")
        return cache[name]

    return get


def latent_for(vae, frames: int, hw: int, seed: int = 0) -> torch.Tensor:
    from vaestudy.decode.common import latent_channels

    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, latent_channels(vae), frames, hw, hw, generator=g)


# ---- comparing decoded videos ------------------------------------------------------------------------------------
# One helper for every comparison of decoded tensors.  On failure it prints the max abs error and the PSNR (the
# package's one oracle, vaestudy.compare), never the tensors themselves.
FP32_EXACT = 1e-5  # fp32, same maths in another order (chunked vs full, tiles vs one pass): max abs error bound


def _describe(actual: torch.Tensor, expected: torch.Tensor) -> str:
    from vaestudy.measure.oracle import compare

    if actual.shape != expected.shape:
        return f"shapes differ: {tuple(actual.shape)} vs {tuple(expected.shape)}"
    c = compare(expected, actual)
    return f"max abs {c['max_abs']:.3g}, mean abs {c['mean_abs']:.3g}, PSNR {c['psnr_db']:.1f} dB"


def assert_video_close(actual: torch.Tensor, expected: torch.Tensor, *, atol: float = FP32_EXACT,
                       what: str = "decode") -> None:
    """``actual`` equals ``expected`` within ``atol`` max abs (the bound the arithmetic guarantees)."""
    __tracebackhide__ = True
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: {_describe(actual, expected)}")
    err = float((actual.detach().double() - expected.detach().double()).abs().max()) if actual.numel() else 0.0
    if not err <= atol:  # NaN fails too
        raise AssertionError(f"{what}: {_describe(actual, expected)} (tolerance {atol:g})")


def assert_bit_equal(actual: torch.Tensor, expected: torch.Tensor, *, proof: str, what: str = "decode") -> None:
    """Bit equality, only where ``proof`` says why it must hold (same kernels on the same inputs, in one process)."""
    __tracebackhide__ = True
    if not proof:
        raise ValueError("proof='' : say why bit equality is guaranteed, or use assert_video_close")
    if actual.shape != expected.shape or not torch.equal(actual, expected):
        raise AssertionError(f"{what}: not bit-equal although {proof}: {_describe(actual, expected)}")
