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
from skimage.metrics import peak_signal_noise_ratio

from vaestudy import data
from vaestudy.embedded import EMBEDDED, _to_unit, embedded_card, load_embedded, reconstruct


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
        ref, test = _to_unit(crops[i]), _to_unit(out[0])  # (T, H, W, 3) in [0, 1], as the card scores them
        bias = (test - ref).mean(axis=(0, 1, 2))
        scored.append(peak_signal_noise_ratio(ref, test, data_range=1.0))
        offset_free.append(peak_signal_noise_ratio(ref, test - bias, data_range=1.0))
        share = 1 - 10 ** ((scored[-1] - offset_free[-1]) / 10)
        print(f"crop {i}: mean error R {bias[0]:+.4f} G {bias[1]:+.4f} B {bias[2]:+.4f}; PSNR {scored[-1]:.2f} dB, "
              f"{offset_free[-1]:.2f} dB without it ({100 * share:.0f}% of the MSE)")
    print(f"mean over crops: {np.mean(scored):.2f} dB as scored (the card: {ho['psnr_db']:.2f}), "
          f"{np.mean(offset_free):.2f} dB without each crop's colour offset")


if __name__ == "__main__":
    main()
