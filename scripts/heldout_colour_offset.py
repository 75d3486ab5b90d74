"""How much of an embedded model's held-out error is one constant colour offset per crop.

For each of the model card's held-out crops, the script decodes the crop and prints
``embedded.colour_offset``: the mean error of each RGB channel over the whole crop, and the crop's PSNR as
scored and with that per-channel mean subtracted.  The second number is an oracle (it uses the ground
truth), not a score: it says how much a model that got each crop's overall colour right would gain, which is
where a colour cast learnt from the training footage shows up.  Notebook 00 shows the same numbers.

usage: python scripts/heldout_colour_offset.py [--model wan2.1] [--threads 1]
"""

import argparse

import numpy as np
import torch

from vaestudy import data
from vaestudy.registry.embedded import EMBEDDED, embedded_card, load_embedded
from vaestudy.training.heldout import heldout_frames


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="wan2.1", choices=sorted(EMBEDDED))
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    ho = embedded_card(a.model)["heldout"]
    crops, _ = data.eval_crops(ho["clip"], len(ho["crops"]), ho["frames"], tuple(ho["size"]))
    print(f"{a.model} (embedded weights), {ho['clip']} {ho['size'][0]}x{ho['size'][1]}x{ho['frames']}, "
          f"{len(crops)} crops; error in [0, 1] units")
    rows = [r["colour"] for r in heldout_frames(load_embedded(a.model), crops)]
    for i, c in enumerate(rows):
        r, g, b = c["offset"]
        print(f"crop {i}: mean error R {r:+.4f} G {g:+.4f} B {b:+.4f}; PSNR {c['psnr_db']:.2f} dB, "
              f"{c['offset_free_psnr_db']:.2f} dB without it ({100 * c['share']:.0f}% of the MSE)")
    print(f"mean over crops: {np.mean([c['psnr_db'] for c in rows]):.2f} dB as scored (the card: {ho['psnr_db']:.2f}), "
          f"{np.mean([c['offset_free_psnr_db'] for c in rows]):.2f} dB without each crop's colour offset")


if __name__ == "__main__":
    main()
