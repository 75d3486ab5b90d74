"""How well the embedded models reconstruct real held-out clips: PSNR/SSIM per frame, colour cast, resize baselines."""

from __future__ import annotations

import numpy as np
import torch

from vaestudy.decode.common import family_decode_settings, own_decode
from vaestudy.measure.metrics import adjacent_ssim
from vaestudy.measure.oracle import psnr
from vaestudy.registry.families import family_of

# ---------------------------------------------------------------------------------------------
# The shared held-out evaluation
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def encode_mean(vae: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """Posterior-mean latent (B, C, t, h, w) of a (B, 3, T, H, W) video in [-1, 1], under the class's conventions:
    per-frame 2-D latents (the registry's ``per_frame_latents``) and diffusers' tiling switched on where the family's
    own decode() tiles by default or only (``decode_tiling``; a class with no untiled decode has no untiled encode)."""
    if video.ndim != 5 or video.shape[1] != 3:
        raise ValueError(f"video shape {tuple(video.shape)} must be (batch, 3, frames, height, width)")
    family = family_of(vae)
    with family_decode_settings(vae, spatial_tiling=family.decode_tiling != "off"):
        if family.per_frame_latents:
            b, c, t, h, w = video.shape
            z = vae.encode(video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)).latent_dist.mode()
            return z.reshape(b, t, *z.shape[1:]).permute(0, 2, 1, 3, 4)
        return vae.encode(video).latent_dist.mode()


@torch.no_grad()
def reconstruct(vae: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """Encode (posterior mean, :func:`encode_mean`) and decode with the family's own decode() in one full pass;
    (B, 3, T, H, W) in [-1, 1] -> (B, 3, T', H, W), clamped. T' is T unless the class's encoder and decoder disagree
    on frame counts (the caller checks)."""
    return own_decode(vae, encode_mean(vae, video)).clamp(-1.0, 1.0)


def _to_unit(x: torch.Tensor) -> np.ndarray:
    """(3, T, H, W) in [-1, 1] -> (T, H, W, 3) float64 in [0, 1]."""
    return ((x.detach().double().clamp(-1, 1) + 1.0) / 2.0).permute(1, 2, 3, 0).cpu().numpy()


def psnr_per_frame(ref: torch.Tensor, test: torch.Tensor) -> np.ndarray:
    """PSNR in dB of each frame of (3, T, H, W) videos in [-1, 1], clipped (:func:`vaestudy.measure.oracle.psnr`)."""
    return np.array([psnr(ref[:, t], test[:, t], clip=True) for t in range(ref.shape[1])])


def video_scores(ref: torch.Tensor, test: torch.Tensor) -> dict:
    """PSNR (dB, from the MSE over the whole clip) and mean per-frame SSIM of (3, T, H, W) videos in [-1, 1]."""
    from skimage.metrics import structural_similarity

    a, b = _to_unit(ref), _to_unit(test)
    ssim = float(np.mean([structural_similarity(a[t], b[t], channel_axis=-1, data_range=1.0)
                          for t in range(a.shape[0])]))
    return {"psnr_db": psnr(ref, test, clip=True), "ssim": ssim}


def colour_offset(ref: torch.Tensor, test: torch.Tensor) -> dict:
    """How much of ``test``'s error is one constant per RGB channel over the whole (3, T, H, W) clip (in [-1, 1]).

    ``offset``: the mean error of R, G, B in [0, 1] units; ``psnr_db``: the clip's PSNR as :func:`video_scores`
    scores it; ``offset_free_psnr_db``: the PSNR with that offset subtracted (an oracle: it uses the reference);
    ``share``: the fraction of the MSE the offset explains.  A large share is a colour cast, e.g. the palette of
    a small training set learnt as a prior, rather than lost detail.
    """
    a, b = _to_unit(ref), _to_unit(test)
    bias = (b - a).mean(axis=(0, 1, 2))
    db, free = (psnr(2 * a - 1, 2 * x - 1) for x in (b, b - bias))  # back to decoded units for the one PSNR
    share = 1.0 - 10.0 ** ((db - free) / 10.0) if np.isfinite(db) else 0.0  # 1 - MSE without / MSE with
    return {"offset": tuple(float(v) for v in bias), "psnr_db": db,
            "offset_free_psnr_db": free, "share": share}


@torch.no_grad()
def resize_baseline(video: torch.Tensor, factor: int = 8) -> torch.Tensor:
    """Each frame bicubic-downscaled by ``factor`` (anti-aliased) and bicubic-upscaled back, clamped to [-1, 1].

    A yardstick for the held-out numbers, not a model: it keeps 3 values per ``factor``² pixels of every frame
    (1/64 of the values at 8, against 1/48 for a 4x8x8 VAE with 16 channels) and compresses nothing in time.
    """
    if video.ndim != 5 or video.shape[1] != 3:
        raise ValueError(f"video shape {tuple(video.shape)} must be (batch, 3, frames, height, width)")
    if not isinstance(factor, int) or factor < 1 or video.shape[-1] % factor or video.shape[-2] % factor:
        raise ValueError(f"factor={factor!r} must be a positive integer dividing height and width "
                         f"{tuple(video.shape[-2:])}")
    b, c, t, h, w = video.shape
    frames = video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    small = torch.nn.functional.interpolate(frames, scale_factor=1 / factor, mode="bicubic", antialias=True)
    back = torch.nn.functional.interpolate(small, size=(h, w), mode="bicubic")
    return back.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4).clamp(-1.0, 1.0)


def _mean_scores(per: list[dict]) -> dict:
    """Mean over crops of :func:`video_scores`, plus ``pooled_psnr_db``: the PSNR of the MSE over all crops together
    (crops of one size, so the mean of their MSEs), where the hardest crops weigh most and an easy one cannot lift
    the score by itself."""
    pooled_mse = np.mean([10.0 ** (-p["psnr_db"] / 10.0) for p in per])  # data range 1: MSE = 10^(-PSNR/10)
    return {"psnr_db": float(np.mean([p["psnr_db"] for p in per])), "ssim": float(np.mean([p["ssim"] for p in per])),
            "pooled_psnr_db": float(-10.0 * np.log10(pooled_mse)), "per_crop": per}


def baseline_scores(crops: torch.Tensor, factor: int = 8) -> dict:
    """:func:`heldout_scores` of :func:`resize_baseline` instead of a VAE: the same crops, PSNR and SSIM."""
    return _mean_scores([video_scores(crops[k], resize_baseline(crops[k:k + 1], factor)[0])
                         for k in range(crops.shape[0])])


def heldout_scores(vae: torch.nn.Module, crops: torch.Tensor) -> dict:
    """Reconstruct each held-out crop (N, 3, T, H, W) alone; per-crop and mean PSNR (dB) / SSIM."""
    return _mean_scores([video_scores(crops[k], reconstruct(vae, crops[k:k + 1])[0]) for k in range(crops.shape[0])])


def heldout_frames(vae: torch.nn.Module, crops: torch.Tensor) -> list[dict]:
    """Where in time the held-out error sits: one reconstruction per crop of ``crops`` (N, 3, T, H, W).

    Per crop: ``psnr`` (dB, each reconstructed frame), ``bicubic_psnr`` (each frame of :func:`resize_baseline`, the
    yardstick with no temporal compression), ``adjacent_ssim`` (the *source's* SSIM between frames t and t+1,
    T - 1 values: a drop marks a scene cut or fast motion, ``004_*.txt``), ``change_at`` (the first frame
    after the source's largest change, ``argmin(adjacent_ssim) + 1``) and ``colour`` (:func:`colour_offset` of
    the whole crop: how much of its error is a constant colour cast).
    """

    if crops.ndim != 5 or crops.shape[1] != 3 or crops.shape[2] < 2:
        raise ValueError(f"crops shape {tuple(crops.shape)} must be (n, 3, frames >= 2, height, width)")
    out = []
    for k in range(crops.shape[0]):
        src = crops[k]
        adj = adjacent_ssim(src)
        rec = reconstruct(vae, crops[k:k + 1])[0]
        out.append({"psnr": psnr_per_frame(src, rec),
                    "bicubic_psnr": psnr_per_frame(src, resize_baseline(crops[k:k + 1])[0]),
                    "adjacent_ssim": adj, "change_at": int(np.argmin(adj)) + 1, "colour": colour_offset(src, rec)})
    return out
