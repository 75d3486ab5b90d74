"""The hardware ceiling: FLOPs of a decode, the machine's measured peak FLOP/s, and the fraction a decode reaches."""

from __future__ import annotations

import math
import statistics

import torch

from vaestudy.bench.config import DTYPES
from vaestudy.clock import Clock
from vaestudy.devices import check_device

# ---------------------------------------------------------------------------------------------
# machine peak (roofline ceiling)
# ---------------------------------------------------------------------------------------------
# Microbenchmark shapes per device type: matmuls (n, n) @ (n, n) and 3x3x3 Conv3d (channels, frames, height, width)
# shaped like a video decoder's up-blocks (many channels at low resolution, fewer at high).  On CUDA: the shapes of a
# 480x832 decode of the 8x-compressing families (c384 at 1/8, c192 at 1/4, c96 at 1/2 of the frame) and matmuls large enough to saturate
# an H100/H200; on CPU, small enough to take a second or two.
PEAK_SHAPES = {
    "cpu": {"matmul": (512, 1024), "conv3d": ((128, 4, 32, 32), (64, 4, 64, 64))},
    "cuda": {"matmul": (4096, 8192), "conv3d": ((384, 4, 60, 104), (192, 4, 120, 208), (96, 4, 240, 416))},
}


def machine_peak(device: str = "cpu", dtype: str = "float32", *, repeats: int = 3, shapes: dict | None = None) -> dict:
    """Best achieved FLOP/s on ``device``/``dtype`` over matmul and decoder-shaped Conv3d microbenchmarks.

    Every shape of ``shapes`` (default :data:`PEAK_SHAPES` for the device type) is run ``repeats`` times after a
    warm-up; FLOPs come from FlopCounterMode (2 per multiply-add), time from :class:`Timer`. Returns ``peak_flops``
    (the best of all), ``peak_op`` and ``peak_shape`` (which shape gave it), the best per op (``matmul_flops``,
    ``conv3d_flops``) and every row. A decode that beats this peak is a measurement error (see
    :func:`fraction_of_peak`).
    """
    from torch.utils.flop_counter import FlopCounterMode

    dev = check_device(device)
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is unknown; valid: {', '.join(DTYPES)}")
    shapes = shapes or PEAK_SHAPES[dev.type]
    dt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(0)
    cases = []
    for n in shapes.get("matmul", ()):
        a, b = (torch.randn(n, n, generator=g).to(dev, dt) for _ in range(2))
        cases.append(("matmul", f"{n}x{n}x{n}", lambda a=a, b=b: a @ b))
    for cin, t, h, w in shapes.get("conv3d", ()):
        x = torch.randn(1, cin, t + 2, h, w, generator=g).to(dev, dt)
        conv = torch.nn.Conv3d(cin, cin, 3, padding=(0, 1, 1)).to(dev, dt).eval()
        cases.append(("conv3d", f"c{cin} t{t} {h}x{w}", lambda x=x, conv=conv: conv(x)))
    rows = []
    timer = Clock(dev)
    with torch.no_grad():
        for op, shape, fn in cases:
            with FlopCounterMode(display=False) as fc:
                fn()
            flops = fc.get_total_flops()
            fn()  # warm-up (cuDNN/oneDNN algorithm choice, allocator)
            best = math.inf
            for _ in range(repeats):
                timer.start()
                fn()
                timer.mark()
                best = min(best, timer.read()[0])
            rows.append({"op": op, "shape": shape, "flops": flops, "seconds": best, "flop_s": flops / best})
    top = max(rows, key=lambda r: r["flop_s"])
    out = {f"{op}_flops": max((r["flop_s"] for r in rows if r["op"] == op), default=None) for op in ("matmul", "conv3d")}
    out.update(peak_flops=top["flop_s"], peak_op=top["op"], peak_shape=top["shape"], rows=rows,
               device=str(dev), dtype=dtype, threads=torch.get_num_threads())
    return out


def fraction_of_peak(flops: float | None, seconds: float, peak_flops: float | None) -> tuple[float | None, str | None]:
    """(achieved / peak, None), or (None, why) when it cannot be told; above 1.0 is a measurement error, not a result."""
    if not flops or not peak_flops:
        return None, None
    frac = flops / seconds / peak_flops
    if frac > 1.0:
        return None, (f"achieved {flops / seconds:.3g} FLOP/s exceeds the measured peak {peak_flops:.3g} FLOP/s "
                      f"({frac:.2f}x): the peak microbenchmark under-measures this device (shapes too small?)")
    return frac, None


def flops_per_pixel_frame(records: list[dict], strategy: str = "chunked") -> float | None:
    """Marginal decode FLOPs per output pixel-frame: the slope of FLOPs against pixel-frames over records
    of one size and several lengths (the first latent frame yields one pixel frame for a whole latent
    frame of work, so FLOPs / pixel-frames of a short video overstates the steady cost). Median over
    sizes; falls back to the plain ratio when no size has two lengths."""
    import numpy as np

    rs = [r for r in records if r["strategy"] == strategy and r.get("flops")]
    slopes = []
    for size in {tuple(r["size"]) for r in rs}:
        pts = sorted({(r["pixel_frames"], r["flops"]) for r in rs if tuple(r["size"]) == size})
        if len({p for p, _ in pts}) >= 2:
            slopes.append(float(np.polyfit([p for p, _ in pts], [f for _, f in pts], 1)[0]))
    if slopes:
        return statistics.median(slopes)
    vals = [r["flops"] / r["pixel_frames"] for r in rs]
    return statistics.median(vals) if vals else None
