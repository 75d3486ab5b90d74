"""Real clips and crops, training the embedded tiny models, and scoring them on held-out clips.
"""

from vaestudy.training.heldout import (
    baseline_scores,
    colour_offset,
    encode_mean,
    heldout_frames,
    heldout_scores,
    psnr_per_frame,
    reconstruct,
    resize_baseline,
    video_scores,
)
