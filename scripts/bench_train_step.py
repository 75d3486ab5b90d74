"""Time training steps of the tiny Wan-class model with Conv3d weights stored contiguous vs channels-last.

Both layouts run in one process, alternating step by step on the same batch, so they see the same machine
load; the script prints the median seconds per step of each and their ratio.  This is where the claim in
``vaestudy.training.train_tiny.channels_last`` comes from.

usage: python scripts/bench_train_step.py [--steps 6] [--threads 2] [--batch 4] [--crop 64] [--frames 17]
                                          [--width 16] [--plain]
"""

import argparse
import statistics
import time

import torch

from vaestudy.registry.embedded import embedded_config
from vaestudy.training.train_tiny import init_model, train_step


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=6, help="timed steps per layout (after one warm-up step each)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--frames", type=int, default=17)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--plain", action="store_true", help="the Wan 2.1 block layout instead of is_residual")
    a = p.parse_args(argv)
    if a.steps < 1:
        p.error(f"--steps={a.steps} must be >= 1")
    torch.set_num_threads(a.threads)
    cls, cfg = embedded_config("wan", a.width, residual=not a.plain)
    models = {}
    for layout in ("contiguous", "channels-last"):
        torch.manual_seed(0)
        vae = init_model(cls, cfg, channels_last_weights=layout == "channels-last")
        models[layout] = (vae, torch.optim.AdamW(vae.parameters(), lr=1e-4))
    x = torch.rand(a.batch, 3, a.frames, a.crop, a.crop, generator=torch.Generator().manual_seed(0)) * 2 - 1
    times = {k: [] for k in models}
    for i in range(a.steps + 1):
        for layout, (vae, opt) in models.items():
            t0 = time.perf_counter()
            train_step(vae, opt, "wan", x, torch.Generator().manual_seed(i), first_frame_weight=3.0, grad_weight=0.0,
                       kl_weight=1e-6)
            if i:  # step 0 warms up oneDNN's kernel choice
                times[layout].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'plain' if a.plain else 'residual'} Wan-class, width {a.width}, batch {a.batch} x {a.frames} x {a.crop}^2, "
          f"{a.threads} thread(s), median of {a.steps} steps:")
    for k, v in med.items():
        print(f"  {k:14s} {v:.2f} s/step")
    print(f"  channels-last speed-up: {med['contiguous'] / med['channels-last']:.2f}x")


if __name__ == "__main__":
    main()
