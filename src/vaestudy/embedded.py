"""Tiny causal video VAEs trained in-project on real clips and shipped inside the package.

Each entry of :data:`EMBEDDED` is a small model of the *same diffusers class and compression*
as a real family (Wan 2.1: ``AutoencoderKLWan``; CogVideoX: ``AutoencoderKLCogVideoX``; both
4x8x8 with 16 latent channels), trained by :mod:`vaestudy.train_tiny` on bigbuckbunny and
carphone (stills panned by a camera path are an option of the trainer), with ``bikes`` held out.
Weights are fp16 safetensors in ``vaestudy/weights/``; the JSON beside them holds the diffusers config
and the measured numbers, the Markdown file is the model card.  Loading is offline and needs no hub access.

:func:`reconstruct` and :func:`heldout_scores` are the one definition of "held-out PSNR/SSIM"
that the training script, the model cards and the tests share.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class EmbeddedModel:
    """Where one embedded model lives in the package and which diffusers class it is."""

    family: str  # registry key in vaestudy.models
    diffusers_class: str
    stem: str  # file stem in vaestudy/weights/: <stem>.safetensors / .json / .md

    @property
    def weights_path(self) -> Path:
        return WEIGHTS_DIR / f"{self.stem}.safetensors"

    @property
    def card_json_path(self) -> Path:
        return WEIGHTS_DIR / f"{self.stem}.json"

    @property
    def card_md_path(self) -> Path:
        return WEIGHTS_DIR / f"{self.stem}.md"

    @property
    def shipped(self) -> bool:
        """True when the weights and the JSON card are present in the installed package."""
        return self.weights_path.exists() and self.card_json_path.exists()


EMBEDDED: dict[str, EmbeddedModel] = {
    "wan2.1": EmbeddedModel("wan2.1", "AutoencoderKLWan", "wan2.1-tiny"),
    "cogvideox": EmbeddedModel("cogvideox", "AutoencoderKLCogVideoX", "cogvideox-tiny"),
}


def _entry(family_name: str) -> EmbeddedModel:
    if family_name not in EMBEDDED:
        raise ValueError(f"family_name={family_name!r} has no embedded model; valid: {', '.join(EMBEDDED)}")
    e = EMBEDDED[family_name]
    if not e.shipped:
        raise FileNotFoundError(
            f"embedded weights for {family_name!r} are missing ({e.weights_path.name}, {e.card_json_path.name} "
            f"in {WEIGHTS_DIR}); train and ship them with `python -m vaestudy.train_tiny --family "
            f"{'wan' if family_name == 'wan2.1' else family_name}`"
        )
    return e


def embedded_card(family_name: str) -> dict:
    """The shipped JSON card: diffusers config, training recipe and measured held-out numbers."""
    return json.loads(_entry(family_name).card_json_path.read_text())


def build_model(diffusers_class: str, config: dict) -> torch.nn.Module:
    """A diffusers VAE of ``diffusers_class`` built from ``config`` (random weights, fp32)."""
    import diffusers

    if diffusers_class not in ("AutoencoderKLWan", "AutoencoderKLCogVideoX"):
        raise ValueError(f"diffusers_class={diffusers_class!r}; valid: AutoencoderKLWan, AutoencoderKLCogVideoX")
    cls = getattr(diffusers, diffusers_class)
    cfg = {k: v for k, v in config.items() if not k.startswith("_")}
    return cls.from_config(cfg)


def load_embedded(family_name: str) -> torch.nn.Module:
    """The shipped tiny model of a family ("wan2.1" or "cogvideox"): offline, eval mode, fp32, CPU."""
    from safetensors.torch import load_file

    e = _entry(family_name)
    card = embedded_card(family_name)
    model = build_model(e.diffusers_class, card["config"])
    state = {k: v.float() for k, v in load_file(str(e.weights_path)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{e.weights_path.name} does not match its config: missing={missing[:5]}, "
                           f"unexpected={unexpected[:5]}")
    return model.eval().float()


# ---------------------------------------------------------------------------------------------
# The shared held-out evaluation
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def reconstruct(vae: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """Encode (posterior mean) and decode in one full pass; (B, 3, T, H, W) in [-1, 1] -> same shape, clamped."""
    if video.ndim != 5 or video.shape[1] != 3:
        raise ValueError(f"video shape {tuple(video.shape)} must be (batch, 3, frames, height, width)")
    dist = vae.encode(video).latent_dist
    out = vae.decode(dist.mode()).sample
    if hasattr(vae, "clear_cache"):
        vae.clear_cache()
    return out.clamp(-1.0, 1.0)


def _to_unit(x: torch.Tensor) -> np.ndarray:
    """(3, T, H, W) in [-1, 1] -> (T, H, W, 3) float64 in [0, 1]."""
    return ((x.detach().double().clamp(-1, 1) + 1.0) / 2.0).permute(1, 2, 3, 0).cpu().numpy()


def psnr_per_frame(ref: torch.Tensor, test: torch.Tensor) -> np.ndarray:
    """PSNR in dB of each frame of (3, T, H, W) videos in [-1, 1] (data range 1 after mapping to [0, 1])."""
    from skimage.metrics import peak_signal_noise_ratio

    a, b = _to_unit(ref), _to_unit(test)
    return np.array([peak_signal_noise_ratio(a[t], b[t], data_range=1.0) for t in range(a.shape[0])])


def video_scores(ref: torch.Tensor, test: torch.Tensor) -> dict:
    """PSNR (dB, from the MSE over the whole clip) and mean per-frame SSIM of (3, T, H, W) videos in [-1, 1]."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a, b = _to_unit(ref), _to_unit(test)
    psnr = float(peak_signal_noise_ratio(a, b, data_range=1.0))
    ssim = float(np.mean([structural_similarity(a[t], b[t], channel_axis=-1, data_range=1.0)
                          for t in range(a.shape[0])]))
    return {"psnr_db": psnr, "ssim": ssim}


def colour_offset(ref: torch.Tensor, test: torch.Tensor) -> dict:
    """How much of ``test``'s error is one constant per RGB channel over the whole (3, T, H, W) clip (in [-1, 1]).

    ``offset``: the mean error of R, G, B in [0, 1] units; ``psnr_db``: the clip's PSNR as :func:`video_scores`
    scores it; ``offset_free_psnr_db``: the PSNR with that offset subtracted (an oracle: it uses the reference);
    ``share``: the fraction of the MSE the offset explains.  A large share is a colour cast, e.g. the palette of
    a small training set learnt as a prior, rather than lost detail.
    """
    from skimage.metrics import peak_signal_noise_ratio

    a, b = _to_unit(ref), _to_unit(test)
    bias = (b - a).mean(axis=(0, 1, 2))
    with np.errstate(divide="ignore"):  # identical clips: inf dB, as video_scores reports them
        psnr, free = (float(peak_signal_noise_ratio(a, x, data_range=1.0)) for x in (b, b - bias))
    share = 1.0 - 10.0 ** ((psnr - free) / 10.0) if np.isfinite(psnr) else 0.0  # 1 - MSE without / MSE with
    return {"offset": tuple(float(v) for v in bias), "psnr_db": psnr, "offset_free_psnr_db": free, "share": share}


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
    from vaestudy.metrics import adjacent_ssim

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
