"""Train the tiny embedded VAEs on CPU: ``python -m vaestudy.training.train_tiny --family NAME``.

Longer than 500 lines for a reason: one resumable training run is one unit — its options, loop, checkpoints and
the model card it ships share the recipe and the command line; split, each part would import the others.

A small model of the diffusers class of each family in ``registry.embedded.EMBEDDED`` (``--family`` takes the
spellings of ``EMBEDDED_ALIASES``; the registry builds the model and says which options its class takes), trained
on seeded random crops of bigbuckbunny and carphone
(plus ``skimage.data`` stills panned by random camera paths; optionally faster motion by temporal stride,
synthetic scene cuts and reordered colour channels, see ``data.CropSampler``), with ``bikes`` held out.  Crops
may be short (``--frames``) with every K-th step on longer ones (``--long-frames``, ``--long-every``).  The run is
resumable: a checkpoint (model, EMA, optimizer, scheduler, RNG state, step, CPU and wall time used) is
written every ``--ckpt-minutes`` (and on SIGTERM/SIGINT) to a directory outside the git tree, and training
crops are a pure function of (seed, step), so a resumed run sees what an uninterrupted one would have.
The budget ``--minutes`` counts the training process's own CPU time (with one thread: CPU-minutes), so a
run on a shared machine gets the compute it would get alone; ``--max-wall-minutes`` caps the wall clock.  At the end
(or with ``--ship-only``) the EMA weights go to ``vaestudy/weights/`` as fp16 safetensors with a
JSON card and a Markdown model card whose numbers are measured on the shipped (fp16) weights.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vaestudy import data
from vaestudy.decode.common import clear_vae_cache
from vaestudy.decode.streams import FeatCacheStream
from vaestudy.registry.embedded import (
    EMBEDDED_ALIASES,
    MODEL_OPTIONS,
    WEIGHTS_DIR,
    build_model,
    embedded_config,
    embedded_entry,
    freeze_decoder_attention,
    moments_conv,
    option_refusal,
    option_takers,
)
from vaestudy.registry.family import VAEFamily
from vaestudy.training.heldout import baseline_scores, heldout_scores

HELDOUT = {"name": "bikes", "n": 8, "frames": 17, "size": (128, 128)}
TEST_SUBSET = (4,)  # the held-out crop the fast tests re-evaluate (one 128x128x17 crop keeps them fast)


def init_logvar_small(vae: torch.nn.Module) -> None:
    """Start the posterior's log-variance near -6 (std 0.05) so sampling noise does not drown the signal.

    FINDINGS: with the default init (logvar ~ 0, std ~ 1) nothing is learned in the first minutes.
    The registry says which conv produces the moments (:func:`vaestudy.registry.embedded.moments_conv`).
    """
    conv = moments_conv(vae)
    half = conv.out_channels // 2
    with torch.no_grad():
        conv.weight[half:] *= 0.1
        conv.bias[half:] = -6.0


def channels_last(vae: torch.nn.Module) -> None:
    """Store every Conv3d weight channels-last, which oneDNN runs faster on CPU (``scripts/bench_train_step.py``)."""
    for m in vae.modules():
        if isinstance(m, torch.nn.Conv3d):
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last_3d)


def init_model(cls_name: str, config: dict, *, no_decoder_attention: bool = False,
               channels_last_weights: bool = True) -> torch.nn.Module:
    """A fresh model ready to train (seed torch first): fp32, train mode, small posterior variance, the options."""
    vae = build_model(cls_name, config).float().train()
    init_logvar_small(vae)
    if no_decoder_attention:
        freeze_decoder_attention(vae)
    if channels_last_weights:
        channels_last(vae)
    return vae


def decode_unclamped(vae: torch.nn.Module, z: torch.Tensor, family: VAEFamily) -> torch.Tensor:
    """The family's own ``decode()`` without the final clamp it may apply (a clamp has no gradient outside [-1, 1]).

    Where decode() clamps (``family.clamps_output``), its arithmetic is redone from the registry's description: the
    post-quant conv over the whole latent at once, then the decoder on one latent frame and then ``decode_batch``
    frames per call, carrying the ``feat_cache`` that a :class:`~vaestudy.decode.streams.FeatCacheStream` sizes.
    (The stream's own ``step`` applies the post-quant conv per chunk: the same values, but that conv's gradient
    would be summed in another order, and the trained weights would drift from those of the published runs.)
    """
    if not family.clamps_output:
        return vae._decode(z).sample
    if family.cache != "feat_cache" or not family.decode_batch:
        raise ValueError(f"family {family.name!r} clamps in decode() but has no feat_cache decode to redo unclamped "
                         f"(cache={family.cache!r}, decode_batch={family.decode_batch!r})")
    clear_vae_cache(vae)
    cache = FeatCacheStream(vae, clamp=False).cache  # one empty slot per causal conv of the decoder
    x = vae.post_quant_conv(z)
    t, b = z.shape[2], family.decode_batch
    bounds = [(0, 1)] + [(a, min(a + b, t)) for a in range(1, t, b)]
    outs = [vae.decoder(x[:, :, a:e], feat_cache=cache, feat_idx=[0], first_chunk=(a == 0)) for a, e in bounds]
    clear_vae_cache(vae)
    return torch.cat(outs, 2)


def forward_train(vae: torch.nn.Module, family: str, x: torch.Tensor, gen: torch.Generator):
    """(reconstruction, posterior mean, log-variance) with a sampled latent, decoded as the family's own decode() does.

    ``family`` is the trainer's ``--family`` spelling (or a registry key) of ``vae``'s embedded model.
    """
    moments = vae._encode(x)
    mean, logvar = moments.chunk(2, dim=1)
    logvar = logvar.clamp(-30.0, 20.0)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen)
    rec = decode_unclamped(vae, z, embedded_entry(family).vae_family)
    return rec, mean, logvar


def train_step(vae: torch.nn.Module, opt: torch.optim.Optimizer, family: str, x: torch.Tensor,
               gen: torch.Generator, *, first_frame_weight: float, grad_weight: float, kl_weight: float):
    """One optimiser step on batch ``x``: (reconstruction, loss terms, gradient norm before clipping to 1)."""
    rec, mean, logvar = forward_train(vae, family, x, gen)
    terms = loss_terms(rec, x, mean, logvar, first_frame_weight, grad_weight, kl_weight)
    opt.zero_grad(set_to_none=True)
    terms["total"].backward()
    gnorm = float(torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0))
    opt.step()
    return rec, terms, gnorm


def loss_terms(rec: torch.Tensor, x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
               first_frame_weight: float, grad_weight: float, kl_weight: float) -> dict:
    """L1 + MSE (frame-weighted), L1 of spatial gradients, and the mean-square part of the KL.

    Only the ``mu**2 / 2`` half of the KL is kept (mean per latent element): the variance half pushes the
    log-variance up, and with Adam even a weight of 1e-4 lifted it from -6 to about -1 within 300 steps in
    our first run, so sampling noise (std ~0.6) drowned the latent (std ~0.7) and training stalled at
    ~13 dB.  Without it the reconstruction term alone drives the variance down: ``sample()`` stays close
    to ``mode()``.  ``kl_weight`` multiplies this latent L2 term.
    """
    t = x.shape[2]
    w = torch.ones(t)
    w[0] = first_frame_weight
    w = (w / w.sum() * t).view(1, 1, t, 1, 1)
    err = rec - x
    l1 = (err.abs() * w).mean()
    mse = (err.pow(2) * w).mean()

    def grads(v):
        return v[..., 1:, :] - v[..., :-1, :], v[..., :, 1:] - v[..., :, :-1]

    (ry, rx), (xy, xx) = grads(rec), grads(x)
    grad = ((ry - xy).abs() * w).mean() + ((rx - xx).abs() * w).mean()
    latent_l2 = 0.5 * mean.pow(2).mean()
    total = l1 + mse + grad_weight * grad + kl_weight * latent_l2
    return {"total": total, "l1": l1, "mse": mse, "grad": grad, "latent_l2": latent_l2,
            "logvar_mean": logvar.detach().mean()}


class WarmupCosine:
    """lr multiplier: linear warmup over ``warmup`` steps, then cosine to ``floor`` as progress goes 0 -> 1.

    Progress is ``max(step / total_steps, cpu / cpu_budget, wall / wall_cap)``: a run that is step-bound is
    exactly reproducible; one that hits its CPU budget or wall cap first still ends its cosine instead of
    being cut off at a high learning rate.  Its whole state is (step, cpu, wall), all checkpointed.
    """

    def __init__(self, warmup: int, total_steps: int, cpu_budget_s: float, wall_cap_s: float,
                 floor: float = 0.05) -> None:
        self.warmup, self.total_steps, self.floor = warmup, total_steps, floor
        self.cpu_budget_s, self.wall_cap_s = cpu_budget_s, wall_cap_s

    def progress(self, step: int, cpu_s: float, wall_s: float) -> float:
        return min(1.0, max(step / self.total_steps, cpu_s / self.cpu_budget_s, wall_s / self.wall_cap_s))

    def __call__(self, step: int, cpu_s: float, wall_s: float) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        p0 = self.warmup / self.total_steps
        p = max(0.0, (self.progress(step, cpu_s, wall_s) - p0) / (1 - p0))
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))


def make_sampler(args, frames: int | None = None) -> data.CropSampler:
    """The run's crop sampler; ``frames`` overrides ``--frames`` (the long crops of ``--long-every``)."""
    clips = {"bigbuckbunny": tuple(args.bbb_scales), "carphone": (1.0,)}
    return data.CropSampler(clips, data.STILLS if args.still_fraction > 0 else (), frames=frames or args.frames,
                            size=(args.crop, args.crop), seed=args.seed, still_fraction=args.still_fraction,
                            max_shift=args.max_shift, max_stride=args.max_stride,
                            stride_fraction=args.stride_fraction, cut_fraction=args.cut_fraction,
                            colour_fraction=args.colour_fraction)


def uses_long_crops(step: int, long_every: int) -> bool:
    """Whether step ``step`` trains on ``--long-frames`` crops: every ``long_every``-th step (0: never)."""
    return long_every > 0 and step % long_every == long_every - 1


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _log(out_dir: Path, record: dict) -> None:
    with open(out_dir / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vaestudy.training.train_tiny", description=__doc__.split("\n")[0])
    p.add_argument("--family", required=True, choices=sorted(EMBEDDED_ALIASES),
                   help="which embedded model (registry.embedded.EMBEDDED_ALIASES)")
    p.add_argument("--minutes", type=float, default=60.0,
                   help="budget: minutes of this process's CPU time over all resumes (1 thread: CPU-minutes)")
    p.add_argument("--max-wall-minutes", type=float, default=90.0, help="wall-clock cap over all resumes (minutes)")
    p.add_argument("--steps", type=int, default=None, help="schedule length (default: per family)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the other core is for the team)")
    p.add_argument("--out", type=Path, default=None, help="checkpoint dir (default ~/.cache/vaestudy/train/<family>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=None, help="channels of the first stage (default: per family)")
    p.add_argument("--residual", action="store_true",
                   help=f"--family {'/'.join(option_takers('residual'))} only: the class's is_residual down/up blocks "
                        "(shortcut blocks); trains faster, but see registry.embedded.embedded_config for what it does "
                        "to tiling")
    p.add_argument("--no-decoder-attention", action="store_true",
                   help="zero and freeze the output projection of the decoder's mid-block attention, so it is the "
                        "identity and the decoder is purely convolutional (see freeze_decoder_attention)")
    p.add_argument("--frames", type=int, default=None, help="frames per training crop (1 + 4k; default per family)")
    p.add_argument("--crop", type=int, default=48, help="training crop side (pixels, multiple of 8)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=40)
    p.add_argument("--first-frame-weight", type=float, default=3.0)
    p.add_argument("--grad-weight", type=float, default=0.5)
    p.add_argument("--kl-weight", type=float, default=1e-4)
    p.add_argument("--still-fraction", type=float, default=0.3)
    p.add_argument("--max-shift", type=float, default=3.0, help="max still pan speed (pixels/frame)")
    p.add_argument("--max-stride", type=int, default=2,
                   help="largest temporal stride of clip crops (faster apparent motion; see data.CropSampler)")
    p.add_argument("--stride-fraction", type=float, default=0.3,
                   help="share of clip crops taken at a stride of 2..--max-stride instead of 1")
    p.add_argument("--cut-fraction", type=float, default=0.0,
                   help="share of crops that hold a scene cut to a second random crop (see data.CropSampler)")
    p.add_argument("--colour-fraction", type=float, default=0.0,
                   help="share of crops whose RGB channels are reordered (no colour cast learnt as a prior)")
    p.add_argument("--long-frames", type=int, default=0,
                   help="frames of the crops of every --long-every-th step (1 + 4k, more than --frames; 0: none): "
                        "short crops train faster, long ones show the decoder the latent frames it decodes later")
    p.add_argument("--long-every", type=int, default=0, help="every how many steps one trains on --long-frames crops")
    p.add_argument("--bbb-scales", type=float, nargs="+", default=[0.25, 0.5])
    p.add_argument("--ema", type=float, default=0.998)
    p.add_argument("--ckpt-minutes", type=float, default=3.0)
    p.add_argument("--eval-minutes", type=float, default=8.0, help="periodic held-out eval (CPU-minutes)")
    p.add_argument("--no-ship", action="store_true", help="do not write vaestudy/weights/ at the end")
    p.add_argument("--ship-only", action="store_true", help="ship the last checkpoint without training")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start over")
    a = p.parse_args(argv)
    entry = embedded_entry(a.family)
    for k, v in entry.train_defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    for name in MODEL_OPTIONS:
        why = option_refusal(a.family, name)
        if getattr(a, name) and why:
            p.error(f"--{name.replace('_', '-')} applies to --family {' or '.join(option_takers(name))} only "
                    f"(got --family {a.family}): {why}")
    step = entry.vae_family.frame_step  # the registry's rule: valid frame counts are 1 + step * k
    for name in ("frames", "long_frames"):
        v = getattr(a, name)
        if (v or name == "frames") and (v < 1 or (v - 1) % step):  # --long-frames 0: none
            p.error(f"--{name.replace('_', '-')}={v} must be 1 + {step}k: {entry.label} decodes cleanly only "
                    f"1 + {step}k frames ({', '.join(map(str, range(1 + step, 2 + 3 * step, step)))}, ...)")
    if bool(a.long_frames) != bool(a.long_every):
        p.error(f"--long-frames={a.long_frames} and --long-every={a.long_every}: set both or neither")
    if a.long_frames and a.long_frames <= a.frames:
        p.error(f"--long-frames={a.long_frames} must be more than --frames={a.frames}")
    if a.long_every and a.long_every < 2:
        p.error(f"--long-every={a.long_every} must be >= 2 (1 would be --frames {a.long_frames})")
    if a.max_stride < 1:
        p.error(f"--max-stride={a.max_stride} must be >= 1 (1: every source frame)")
    for name in ("stride_fraction", "cut_fraction", "colour_fraction"):
        if not 0.0 <= getattr(a, name) <= 1.0:
            p.error(f"--{name.replace('_', '-')}={getattr(a, name)} must be in [0, 1]")
    if a.crop % 8 or a.crop < 8:
        p.error(f"--crop={a.crop} must be a positive multiple of 8")
    if a.out is None:
        a.out = Path.home() / ".cache" / "vaestudy" / "train" / a.family
    return a


# recipe options added later, with the default that reproduces the runs from before them: a recipe (and a
# card's command) names them only when they differ, so older checkpoints still resume and older cards still parse
LATER_OPTIONS = {"residual": False, "no_decoder_attention": False, "max_stride": 2, "stride_fraction": 0.3,
                 "cut_fraction": 0.0, "colour_fraction": 0.0, "long_frames": 0, "long_every": 0}

DATA_OPTIONS = ("max_stride", "stride_fraction", "cut_fraction", "colour_fraction", "long_frames", "long_every")


def _later(args, names) -> list[str]:
    """Those of the later options ``names`` that this run sets away from their old default."""
    return [k for k in names if getattr(args, k) != LATER_OPTIONS[k]]


def _later_flags(args, names) -> list[str]:
    """Command-line flags of the later options that differ from their defaults (a switch alone, else flag value)."""
    out = []
    for k in _later(args, names):
        v = getattr(args, k)
        out += [f"--{k.replace('_', '-')}"] + ([] if isinstance(v, bool) else [f"{v:g}"])
    return out


def _recipe(args) -> dict:
    keys = ["family", "seed", "width", *_later(args, MODEL_OPTIONS),
            "frames", "crop", "batch", "lr", "warmup", "steps", "first_frame_weight", "grad_weight", "kl_weight",
            "still_fraction", "max_shift", *_later(args, DATA_OPTIONS), "bbb_scales", "ema"]
    return {"loss": "l1+mse+grad+latent_l2 (v2)", **{k: getattr(args, k) for k in keys}}


def train(args) -> Path:
    torch.set_num_threads(args.threads)
    cls_name, config = embedded_config(args.family, args.width, residual=args.residual)
    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "last.pt"

    torch.manual_seed(args.seed)
    vae = init_model(cls_name, config, no_decoder_attention=args.no_decoder_attention)
    ema = {k: v.detach().clone() for k, v in vae.state_dict().items()}
    trainable = [p for p in vae.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=args.lr, betas=(0.9, 0.99), weight_decay=1e-4)
    sched = WarmupCosine(args.warmup, args.steps, args.minutes * 60, args.max_wall_minutes * 60)
    step, cpu, wall, evals = 0, 0.0, 0.0, []
    if ckpt_path.exists() and not args.fresh:
        ck = torch.load(ckpt_path, weights_only=False)
        if ck["recipe"] != _recipe(args):
            raise ValueError(f"checkpoint {ckpt_path} was made with a different recipe:\n{ck['recipe']}\n"
                             f"vs now\n{_recipe(args)}\nuse --fresh or another --out")
        vae.load_state_dict(ck["model"])
        ema = ck["ema"]
        opt.load_state_dict(ck["optimizer"])
        torch.set_rng_state(ck["torch_rng"])
        random.setstate(ck["python_rng"])
        step, evals = ck["step"], ck["evals"]
        # checkpoints from before the CPU budget only know wall time: count it all as CPU (conservative)
        cpu, wall = ck.get("cpu_s", ck["elapsed_s"]), ck.get("wall_s", ck["elapsed_s"])
        print(f"resumed from {ckpt_path} at step {step} ({cpu / 60:.1f} CPU-min, {wall / 60:.1f} wall-min done)",
              flush=True)
    elif args.fresh and (out / "log.jsonl").exists():
        (out / "log.jsonl").unlink()

    def save():
        _atomic_save({"recipe": _recipe(args), "class": cls_name, "config": config, "model": vae.state_dict(),
                      "ema": ema, "optimizer": opt.state_dict(), "scheduler": {"step": step, "cpu_s": cpu, "wall_s": wall},
                      "torch_rng": torch.get_rng_state(), "python_rng": random.getstate(), "step": step,
                      "cpu_s": cpu, "wall_s": wall, "elapsed_s": wall, "evals": evals, "sampler": sampler.describe(),
                      "threads": args.threads}, ckpt_path)

    def budget_left() -> bool:
        return step < args.steps and cpu < args.minutes * 60 and wall < args.max_wall_minutes * 60

    if not budget_left():
        print("nothing left to train (steps or minutes already used)", flush=True)
        return ckpt_path

    t0 = time.perf_counter()
    sampler = make_sampler(args)
    long_sampler = make_sampler(args, args.long_frames) if args.long_every else None
    heldout, _ = data.eval_crops(HELDOUT["name"], HELDOUT["n"], HELDOUT["frames"], HELDOUT["size"])
    print(f"data ready in {time.perf_counter() - t0:.1f} s; {sum(p.numel() for p in vae.parameters()) / 1e6:.2f} M "
          f"params; training {args.family} to step {args.steps} within {args.minutes:g} CPU-min "
          f"(wall cap {args.max_wall_minutes:g} min)", flush=True)

    from tqdm import tqdm

    def evaluate(tag):
        ema_model = build_model(cls_name, config)
        ema_model.load_state_dict(ema)
        crops = heldout if tag == "final" else heldout[::2]  # periodic: crops 0, 2, 4, 6 (half the cost)
        s = heldout_scores(ema_model.eval(), crops)
        rec = {"step": step, "minutes": cpu / 60, "wall_minutes": wall / 60, "tag": tag, "heldout_psnr_db": s["psnr_db"],
               "heldout_ssim": s["ssim"], "per_crop_psnr_db": [round(p["psnr_db"], 2) for p in s["per_crop"]]}
        evals.append(rec)
        _log(out, rec)
        tqdm.write(f"[eval step {step}, {cpu / 60:.1f} CPU-min] held-out PSNR {s['psnr_db']:.2f} dB, "
                   f"SSIM {s['ssim']:.3f}  per crop {rec['per_crop_psnr_db']}")

    import signal

    stop = []  # on SIGTERM/SIGINT: finish the step, checkpoint, exit; nothing is lost
    handlers = {sig: signal.signal(sig, lambda num, frame: stop.append(num))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        last_ckpt, last_eval = wall, cpu
        wall0 = time.perf_counter() - wall  # clocks of this process, offset by earlier segments
        cpu0 = time.process_time() - cpu

        def tick():
            nonlocal cpu, wall
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0

        bar = tqdm(total=args.steps, initial=step, desc=f"train {args.family}", mininterval=5, file=sys.stdout,
                   disable=None)  # off when stdout is not a terminal (logs): the periodic eval lines remain
        while budget_left() and not stop:
            lr = args.lr * sched(step, cpu, wall)
            for g in opt.param_groups:
                g["lr"] = lr
            x = (long_sampler if uses_long_crops(step, args.long_every) else sampler).batch(step, args.batch)
            gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
            rec, terms, gnorm = train_step(vae, opt, args.family, x, gen, first_frame_weight=args.first_frame_weight,
                                           grad_weight=args.grad_weight, kl_weight=args.kl_weight)
            step += 1
            with torch.no_grad():
                d = min(args.ema, (1 + step) / (10 + step))
                for k, v in vae.state_dict().items():
                    if v.dtype.is_floating_point:
                        ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
                    else:
                        ema[k].copy_(v)
            tick()
            train_psnr = -10 * math.log10(max(float(((rec.detach().clamp(-1, 1) - x) / 2).pow(2).mean()), 1e-12))
            bar.update(1)
            bar.set_postfix(loss=f"{terms['total'].item():.4f}", psnr=f"{train_psnr:.1f}", lr=f"{lr:.1e}",
                            cpu_min=f"{cpu / 60:.1f}", wall_min=f"{wall / 60:.1f}")
            if step % 25 == 0:
                _log(out, {"step": step, "minutes": cpu / 60, "wall_minutes": wall / 60, "train_psnr_db": train_psnr,
                           "grad_norm": gnorm, **{k: v.item() for k, v in terms.items()}, "lr": lr})
            if cpu - last_eval >= args.eval_minutes * 60:
                evaluate("periodic")
                tick()
                last_eval = cpu
            if wall - last_ckpt >= args.ckpt_minutes * 60:
                save()
                last_ckpt = wall
        bar.close()
        if stop:
            save()
            print(f"stopped by signal at step {step}; checkpoint {ckpt_path} (resume with the same command)", flush=True)
            sys.exit(0)
        if args.no_ship:  # otherwise ship() measures the shipped weights on all crops
            evaluate("final")
        save()
        print(f"done: step {step}, {cpu / 60:.1f} CPU-min, {wall / 60:.1f} wall-min -> {ckpt_path}", flush=True)
        return ckpt_path
    finally:  # the caller's handlers again (a test, or a notebook, that called train())
        for sig, h in handlers.items():
            signal.signal(sig, h)


def command_line(args) -> str:
    """The command that reproduces this run (all recipe flags spelled out)."""
    parts = ["python", "-m", "vaestudy.training.train_tiny", "--family", args.family, "--minutes", f"{args.minutes:g}",
             "--max-wall-minutes", f"{args.max_wall_minutes:g}",
             "--steps", str(args.steps), "--threads", str(args.threads), "--seed", str(args.seed),
             "--width", str(args.width), *_later_flags(args, MODEL_OPTIONS),
             "--frames", str(args.frames), "--crop", str(args.crop),
             "--batch", str(args.batch), "--lr", f"{args.lr:g}", "--warmup", str(args.warmup),
             "--first-frame-weight", f"{args.first_frame_weight:g}", "--grad-weight", f"{args.grad_weight:g}",
             "--kl-weight", f"{args.kl_weight:g}", "--still-fraction", f"{args.still_fraction:g}",
             "--max-shift", f"{args.max_shift:g}", *_later_flags(args, DATA_OPTIONS),
             "--bbb-scales", *[f"{s:g}" for s in args.bbb_scales],
             "--ema", f"{args.ema:g}"]
    return shlex.join(parts)


@torch.no_grad()
def latent_stats(vae, sampler: data.CropSampler, n: int = 16) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of posterior means over ``n`` training crops (for latents_mean/std)."""
    zs = [vae.encode(sampler.crop(10_000_000 + i)[None]).latent_dist.mode() for i in range(n)]
    z = torch.cat([t.transpose(0, 1).flatten(1) for t in zs], 1)  # (channels, samples)
    return [round(float(v), 5) for v in z.mean(1)], [round(float(v), 5) for v in z.std(1)]


def ship(args) -> None:
    """Write fp16 EMA weights, JSON card and Markdown model card to vaestudy/weights/, measured on what ships."""
    import diffusers
    from safetensors.torch import load_file, save_file

    torch.set_num_threads(args.threads)
    ckpt_path = Path(args.out).expanduser() / "last.pt"
    if not ckpt_path.exists():
        raise FileNotFoundError(f"no checkpoint at {ckpt_path}: train first")
    ck = torch.load(ckpt_path, weights_only=False)
    entry = embedded_entry(args.family)
    family = entry.vae_family
    if ck["class"] != family.diffusers_class:
        raise ValueError(f"checkpoint {ckpt_path} holds a {ck['class']}, not the {family.diffusers_class} of "
                         f"--family {args.family}")
    config = dict(ck["config"])
    vae = build_model(family.diffusers_class, config)
    vae.load_state_dict(ck["ema"])
    if "latents_mean" in config:  # the class's config records latent statistics (as the real one does): measure them
        sampler = make_sampler(args)
        config["latents_mean"], config["latents_std"] = latent_stats(vae.eval(), sampler)
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in vae.state_dict().items()}
    save_file(state, str(entry.weights_path), metadata={"family": family.name, "format": "pt"})
    # measure on exactly what ships: fp16 storage loaded back into an fp32 model
    shipped = build_model(family.diffusers_class, config)
    shipped.load_state_dict({k: v.float() for k, v in load_file(str(entry.weights_path)).items()})
    shipped.eval()
    heldout, specs = data.eval_crops(HELDOUT["name"], HELDOUT["n"], HELDOUT["frames"], HELDOUT["size"])
    t0 = time.perf_counter()
    full = heldout_scores(shipped, heldout)
    eval_s = time.perf_counter() - t0
    bicubic = baseline_scores(heldout, 8)
    sub_crops = [full["per_crop"][i] for i in TEST_SUBSET]  # the same crops, scored alone
    sub = {"psnr_db": float(np.mean([c["psnr_db"] for c in sub_crops])),
           "ssim": float(np.mean([c["ssim"] for c in sub_crops]))}
    n_params = sum(p.numel() for p in shipped.parameters())
    card = {
        "family": family.name, "diffusers_class": family.diffusers_class, "config": config,
        "parameters": n_params, "weights_file": entry.weights_path.name,
        "weights_bytes": entry.weights_path.stat().st_size, "storage_dtype": "float16",
        "training": {
            "recipe": ck["recipe"], "steps": ck["step"], "cpu_minutes": round(ck.get("cpu_s", ck["elapsed_s"]) / 60, 2),
            "wall_minutes": round(ck.get("wall_s", ck["elapsed_s"]) / 60, 2),
            "ended_by": ("steps" if ck["step"] >= args.steps else
                         "CPU budget" if ck.get("cpu_s", ck["elapsed_s"]) >= args.minutes * 60 else "wall cap"),
            "threads": ck["threads"], "command": command_line(args), "data": ck["sampler"],
            "loss": (f"L1 + MSE (frame 0 weighted x{args.first_frame_weight:g}) + {args.grad_weight:g} x L1 of spatial "
                     f"gradients + {args.kl_weight:g} x mu^2/2 (the mean half of the KL, mean per latent element; "
                     "the variance half is left out, see loss_terms); latents sampled from the posterior; "
                     "log-variance half of the moments conv initialised at -6 (weights x0.1)"),
            "optimizer": f"AdamW lr {args.lr:g} betas (0.9, 0.99) wd 1e-4, warmup {args.warmup} steps, cosine to 5% over "
                         f"max(step/{args.steps}, CPU-min/{args.minutes:g}, wall-min/{args.max_wall_minutes:g}), "
                         f"grad clip 1.0, EMA {args.ema:g} (shipped)",
            "periodic_evals": ck["evals"],
            "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                         "python": platform.python_version()},
        },
        "heldout": {
            "clip": HELDOUT["name"], "frames": HELDOUT["frames"], "size": list(HELDOUT["size"]), "crops": specs,
            "psnr_db": round(full["psnr_db"], 3), "ssim": round(full["ssim"], 4),
            "pooled_psnr_db": round(full["pooled_psnr_db"], 3),
            "per_crop": [{k: round(v, 4) for k, v in p.items()} for p in full["per_crop"]],
            "eval_seconds": round(eval_s, 1),
            "bicubic_x8": {"psnr_db": round(bicubic["psnr_db"], 3), "ssim": round(bicubic["ssim"], 4),
                           "pooled_psnr_db": round(bicubic["pooled_psnr_db"], 3),
                           "per_crop_psnr_db": [round(p["psnr_db"], 2) for p in bicubic["per_crop"]],
                           "what": "heldout.resize_baseline: per-frame bicubic x8 down and up, no model"},
            "test_subset": {"indices": list(TEST_SUBSET), "psnr_db": round(sub["psnr_db"], 3),
                            "ssim": round(sub["ssim"], 4)},
            "protocol": "posterior mean, one full encode+decode per crop, output clamped to [-1, 1]; PSNR from "
                        "the MSE over the whole crop in [0, 1] (skimage), SSIM per frame (skimage, channel_axis) "
                        "averaged; mean over crops",
        },
    }
    entry.card_json_path.write_text(json.dumps(card, indent=1) + "\n")
    entry.card_md_path.write_text(model_card_markdown(card))
    print(f"shipped {entry.weights_path} ({card['weights_bytes'] / 1e6:.1f} MB): held-out PSNR "
          f"{card['heldout']['psnr_db']:.2f} dB, SSIM {card['heldout']['ssim']:.3f}", flush=True)


def model_card_markdown(card: dict) -> str:
    """The Markdown model card, every number taken from the JSON card."""
    tr, ho = card["training"], card["heldout"]
    entry = embedded_entry(card["family"])
    family = entry.vae_family
    d = tr["data"]
    clips = ", ".join(f"{n} x{s:g} ({a[1]}x{a[2]}, {a[0]} frames)" for n, s, a in d["clips"])
    stills = sorted({n for n, _, _ in d["stills"]})
    still_text = (f"{d['still_fraction'] * 100:.0f}% of crops are `skimage.data` stills ({', '.join(stills)}) panned by a "
                  f"random camera path of up to {d['max_shift_px_per_frame']:g} px/frame." if d["still_fraction"] > 0
                  else "no `skimage.data` stills (still fraction 0).")
    more_augmentations = (f", and a scene cut (frames from a random point on replaced by a second random crop) in "
                          f"{100 * d['cut_fraction']:g}% of crops" if d.get("cut_fraction") else "")
    more_augmentations += (f", and RGB channels reordered (one of the five other orders) in "
                           f"{100 * d['colour_fraction']:g}% of crops" if d.get("colour_fraction") else "")
    max_stride = d.get("max_stride", LATER_OPTIONS["max_stride"])
    stride_range = "2" if max_stride == 2 else f"2-{max_stride}"
    r = tr["recipe"]
    long_text = (f"\n  One step in {r['long_every']} trains on {r['long_frames']}-frame crops drawn the same way instead, so "
                 f"the causal decoder also\n  learns the latent frames it reaches only in longer clips."
                 if r.get("long_every") else "")
    evals = "\n".join(f"| {e['step']} | {e['wall_minutes']:.1f} | {e['minutes']:.1f} | {e['heldout_psnr_db']:.2f} | "
                      f"{e['heldout_ssim']:.3f} |" for e in tr["periodic_evals"])
    per = ", ".join(f"{p['psnr_db']:.2f}" for p in ho["per_crop"])
    cfg = json.dumps({k: v for k, v in card["config"].items() if k not in ("latents_mean", "latents_std")})
    bic = ho["bicubic_x8"]
    bicubic_text = (f"\n- Yardstick: each frame bicubic-downscaled x8 and back (`heldout.resize_baseline`; 1/64 of the values, "
                    f"no temporal\n  compression) scores {bic['psnr_db']:.2f} dB, SSIM {bic['ssim']:.3f} on the same crops "
                    f"(per crop: {', '.join(f'{v:.2f}' for v in bic['per_crop_psnr_db'])} dB).")
    pooled_text = (f"\n- Pooled instead (the MSE of all crops together, so the hardest crops weigh most): PSNR "
                   f"{ho['pooled_psnr_db']:.2f} dB; the yardstick's {bic['pooled_psnr_db']:.2f} dB.")
    option_text = "".join(note for option, note in entry.card_notes.items() if tr["recipe"].get(option))
    attention_text = ("\nIts decoder's mid-block attention is frozen at the identity (output projection zero, "
                      "`--no-decoder-attention`):\nthe decoder is purely convolutional, so tiling error stays near the "
                      "seams (notebook 02, section 7)." if tr["recipe"].get("no_decoder_attention") else "")
    compression = (f"{family.temporal_compression}x{family.spatial_compression}x{family.spatial_compression}, "
                   f"{family.latent_channels} latent channels")
    return f"""# {entry.stem}: an {family.diffusers_class} trained in-project on CPU

A small model of the same diffusers class and compression ({compression}) as the
real `{family.name}` VAE, trained from scratch on real footage so that quality numbers
(tiling seams, chunk flicker) mean something without downloading hub weights.
It is **not** the real model: it is blurrier and has {card['parameters'] / 1e6:.2f} M parameters.{option_text}{attention_text}

- Class and config: `{family.diffusers_class}` `{cfg}`
- Weights: `{card['weights_file']}`, {card['storage_dtype']} storage, {card['weights_bytes'] / 1e6:.2f} MB; load with
  `vaestudy.registry.embedded.load_embedded("{family.name}")` (fp32, eval, offline).

## Training
- Data: seeded random {d['size'][0]}x{d['size'][1]}x{d['frames']} crops of {clips};
  {still_text}  Augmentation: temporal stride {stride_range} on
  {100 * d.get('stride_fraction', LATER_OPTIONS['stride_fraction']):g}% of clip crops (else 1), time reversal, horizontal flip{more_augmentations}.{long_text}  `bikes` is never seen in training.
- Loss: {tr['loss']}.
- Optimiser: {tr['optimizer']}; batch {tr['recipe']['batch']}.
- {tr['steps']} steps in {tr['cpu_minutes']:.1f} CPU-minutes on {tr['threads']} thread(s), {tr['wall_minutes']:.1f} wall
  minutes on a 2-core machine shared with other work (torch {tr['versions']['torch']},
  diffusers {tr['versions']['diffusers']}).
- The run ended on its {tr['ended_by']} (steps {tr['recipe']['steps']}, {tr['command'].split('--minutes ')[1].split()[0]} CPU-min,
  wall cap {tr['command'].split('--max-wall-minutes ')[1].split()[0]} min); the learning rate follows whichever of the
  three is furthest along, so on an idle machine the same command runs more steps and should do at least as well.
- Reproduce: `{tr['command']}` (checkpoints in `~/.cache/vaestudy/train/`, resumable).

## Held-out quality (`{ho['clip']}`, {ho['size'][0]}x{ho['size'][1]}x{ho['frames']}, {len(ho['crops'])} fixed crops)
- PSNR **{ho['psnr_db']:.2f} dB**, SSIM **{ho['ssim']:.3f}** (per crop PSNR: {per} dB).
- Test subset (crop {', '.join(str(i) for i in ho['test_subset']['indices'])}): PSNR {ho['test_subset']['psnr_db']:.2f} dB,
  SSIM {ho['test_subset']['ssim']:.3f} - what `tests/test_embedded.py` re-measures.
- Protocol: {ho['protocol']}.  Crops from `vaestudy.data.eval_crops()`.{pooled_text}{bicubic_text}
- No separate validation clip exists offline: recipes (layout, augmentations) were chosen while looking at these
  crops' scores and at the clip's motion and cuts, so read the number as optimistic for unseen footage.

During training (EMA weights, fp32; periodic rows on crops 0, 2, 4, 6 only, the last row on all crops):

| step | wall minutes | CPU-minutes (all threads) | held-out PSNR (dB) | SSIM |
|---|---|---|---|---|
{evals}
"""



def main(argv=None) -> None:
    args = parse_args(argv)
    if not args.ship_only:
        train(args)
    if not args.no_ship:
        ship(args)


if __name__ == "__main__":
    main()
