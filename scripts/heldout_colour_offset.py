"""How much of an embedded model's held-out error is one constant colour offset per crop.

For each of the model card's held-out crops, the script decodes the crop (``embedded.reconstruct``), takes the
mean error of each RGB channel over the whole crop, and prints the crop's PSNR as scored and with that
per-channel mean subtracted.  The second number is an oracle (it uses the ground truth), not a score: it says
how much a model that got each crop's overall colour right would gain, which is where a colour cast learnt
from the training footage shows up.

usage: python scripts/heldout_colour_offset.py [--model wan2.1] [--threads 1]
"""

import argparse

import numpy as np
import torch

from vaestudy import data
from vaestudy.embedded import EMBEDDED, embedded_card, load_embedded, reconstruct


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="wan2.1", choices=sorted(EMBEDDED))
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    ho = embedded_card(a.model)["heldout"]
    crops, _ = data.eval_crops(ho["clip"], len(ho["crops"]), ho["frames"], tuple(ho["size"]))
    vae = load_embedded(a.model)
    scored, offset_free = [], []
    print(f"{a.model} (embedded weights), {ho['clip']} {ho['size'][0]}x{ho['size'][1]}x{ho['frames']}, "
          f"{len(crops)} crops; error in [0, 1] units")
    for i in range(len(crops)):
        with torch.no_grad():
            out = reconstruct(vae, crops[i:i + 1])
        err = (((out + 1) / 2).clamp(0, 1) - ((crops[i:i + 1] + 1) / 2).clamp(0, 1))[0]  # (3, T, H, W)
        bias = err.mean(dim=(1, 2, 3))
        mse, rest = float(err.pow(2).mean()), float((err - bias.view(3, 1, 1, 1)).pow(2).mean())
        scored.append(-10 * np.log10(mse))
        offset_free.append(-10 * np.log10(rest))
        print(f"crop {i}: mean error R {bias[0]:+.4f} G {bias[1]:+.4f} B {bias[2]:+.4f}; PSNR {scored[-1]:.2f} dB, "
              f"{offset_free[-1]:.2f} dB without it ({100 * (1 - rest / mse):.0f}% of the MSE)")
    print(f"mean over crops: {np.mean(scored):.2f} dB as scored (the card: {ho['psnr_db']:.2f}), "
          f"{np.mean(offset_free):.2f} dB without each crop's colour offset")


if __name__ == "__main__":
    main()
