"""The first thing to run on a GPU box: every command and every notebook on CUDA, at small sizes, in one go.

    python scripts/gpu_check.py [--out build/gpu-check] [--dtype bfloat16] [--skip-notebooks]   (or: make gpu-check)

Steps (each a real ``vaestudy`` command in its own process, so one failure does not hide the others):
decode-check and bench for every registry family, probe, plan (from the bench records just written), stream overlap
(decode on its own CUDA stream), stream two-device and split (NCCL when the machine has >= 2 GPUs, gloo on one),
then ``vaestudy report --device cuda`` (every notebook, FAST sizes). Writes ``summary.json`` and ``summary.txt``
(pass/fail per step, its wall time, the key lines of its output) and exits 1 if any step failed. Without CUDA it
prints "skipped: no CUDA device" and exits 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from vaestudy.registry.families import FAMILIES

STEP_TIMEOUT_S = 900


def family_size(name: str) -> tuple[int, int, str]:
    """Small CUDA sizes per family: 3 latent frames, an 8x8 latent (frames, pixels); the family's smallest valid
    latent frame count where 3 is off its frame rule, and its own 3-D tile where decode() only works in tiles."""
    fam = FAMILIES[name]
    base, step, _, _ = fam.frame_rule
    latent_frames = 3 if base == 1 and (3 - base) % step == 0 else base
    px = 8 * fam.spatial_compression
    if fam.decode_tiling == "only":
        px = max(px, fam.tiling_defaults["kernel"][1])
    return fam.pixel_frames(latent_frames), px, f"{px}x{px}"


def plan_steps(out: Path, *, dtype: str, gpus: int, notebooks: bool) -> list[tuple[str, list[str]]]:
    """(name, argv) of every step, in order."""
    v = [sys.executable, "-m", "vaestudy"]
    bench_out = str(out / "bench.jsonl")
    steps = []
    for name in FAMILIES:
        frames, _, size = family_size(name)
        common = ["--model", name, "--weights", "random", "--device", "cuda", "--dtype", dtype]
        steps.append((f"decode-check {name}", v + ["decode-check", *common, "--frames", str(frames), "--size", size]))
        steps.append((f"bench {name}", v + ["bench", *common, "--frames", str(frames), "--size", size, "--repeats", "3",
                                           "--inline", "--fresh", "--strategies", "full,tiled,chunked,tiled+chunked"
                                           if FAMILIES[name].cache else "full,tiled,chunked-naive",
                                           "--out", bench_out]))
    frames, _, size = family_size("wan2.1")
    for dt in ("float32", "float16", "bfloat16"):  # dtype truth: the same table in every precision, errors vs fp32
        if dt != dtype:
            steps.append((f"decode-check wan2.1 {dt}", v + ["decode-check", "--model", "wan2.1", "--weights", "random",
                                                            "--device", "cuda", "--dtype", dt, "--frames", str(frames),
                                                            "--size", size]))
    steps.append(("probe wan2.1", v + ["probe", "--model", "wan2.1", "--weights", "random", "--device", "cuda",
                                       "--latent", "3", "16", "16"]))
    steps.append(("plan wan2.1", v + ["plan", "--model", "wan2.1", "--frames", "81", "--size", "480x832",
                                      "--memory-budget", "40GiB", "--device", "cuda", "--results", bench_out]))
    steps.append(("stream overlap (CUDA stream)", v + ["stream", "overlap", "--device", "cuda", "--shares", "0.2,0.5,0.8",
                                                        "--chunks", "6", "--latent-hw", "16x16", "--threads", "0"]))
    backend = "NCCL" if gpus >= 2 else "gloo"
    steps.append((f"stream two-device ({backend})", v + ["stream", "two-device", "--clip", "random", "--size", "64x64",
                                                         "--windows", "4", "--timeout", "120"]))
    steps.append((f"stream split ({backend})", v + ["stream", "split", "--latent", "3x8x16", "--timeout", "120"]))
    if notebooks:
        steps.append(("report --device cuda (FAST)", v + ["report", "--device", "cuda", "--fast", "--out-dir",
                                                          str(out / "report")]))
    return steps


def key_lines(text: str, n: int = 14) -> list[str]:
    """The lines a reader checks first: errors, tables' headers and rows, summaries; else the tail."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("[IPKernelApp]")]
    flagged = [ln for ln in lines if any(k in ln for k in ("error", "Error", "ERROR", "FAILED", "machine peak",
                                                          "recommended", "measured", "[report]"))]
    return (flagged or lines)[-n:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", default="build/gpu-check", help="folder for summary.json, summary.txt and the records")
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--skip-notebooks", action="store_true", help="leave out the report (the slowest step)")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gpus = torch.cuda.device_count()
    summary = {"device": torch.cuda.get_device_name(0), "gpus": gpus, "torch": torch.__version__,
               "cuda": torch.version.cuda, "dtype": args.dtype, "steps": []}
    for name, cmd in plan_steps(out, dtype=args.dtype, gpus=gpus, notebooks=not args.skip_notebooks):
        t0 = time.perf_counter()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=STEP_TIMEOUT_S)
            code, text = p.returncode, p.stdout + p.stderr
        except subprocess.TimeoutExpired as exc:
            code, text = "timeout", f"timed out after {STEP_TIMEOUT_S} s\n{exc.stdout or ''}{exc.stderr or ''}"
        row = {"step": name, "ok": code == 0, "exit": code, "seconds": round(time.perf_counter() - t0, 1),
               "command": " ".join(cmd[2:]), "key_lines": key_lines(text if isinstance(text, str) else str(text))}
        summary["steps"].append(row)
        (out / f"{len(summary['steps']):02d}.log").write_text(text if isinstance(text, str) else str(text))
        print(f"[gpu-check] {'ok  ' if row['ok'] else 'FAIL'} {name} ({row['seconds']} s)", flush=True)
    failed = [s["step"] for s in summary["steps"] if not s["ok"]]
    summary["failed"] = failed
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    txt = [f"gpu-check on {summary['device']} x{gpus}, torch {summary['torch']} (CUDA {summary['cuda']}), {args.dtype}"]
    for s in summary["steps"]:
        txt.append(f"{'ok  ' if s['ok'] else 'FAIL'} {s['step']} [{s['seconds']} s]: {s['command']}")
        txt += [f"    {ln}" for ln in s["key_lines"]]
    txt.append(f"{len(summary['steps']) - len(failed)} of {len(summary['steps'])} steps passed"
               + (f"; failed: {', '.join(failed)}" if failed else ""))
    (out / "summary.txt").write_text("\n".join(txt) + "\n")
    print(txt[-1])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
