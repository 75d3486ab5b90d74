"""Receptive-field probe: how far, in latent pixels and frames, an output pixel looks.

The gradient of one output pixel with respect to the latent says which latent positions
influence it.  Decoders with attention or GroupNorm touch the whole frame a little, so the
probe reports the radius that holds a given share (default 99%) of the gradient's L1 mass:
the *effective* receptive field.  A tile needs that much context on each side of a seam, so
``2 * radius`` latent pixels of overlap is the derived minimum; :func:`minimal_overlap` then
checks it against real tiled decodes.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from vaestudy.decode.common import clear_vae_cache, decoder_pass, latent_channels, plain_decode
from vaestudy.decode.full import decode_full
from vaestudy.decode.streams import open_stream
from vaestudy.decode.tiled import TilePlan, decode_tiled
from vaestudy.measure.oracle import ONE_8BIT_LEVEL, compare
from vaestudy.registry.families import family_of


def _differentiable_decode(vae, z):
    family = family_of(vae)
    if family.cache is not None:
        return open_stream(vae, clamp=False).step(z)  # one pass, no clamp (clamp zeroes gradients)
    if family.decode_tiling == "only":  # decode() has no untiled path: the one pass each of its tiles gets
        clear_vae_cache(vae)
        return decoder_pass(vae, z, grad=True)
    return plain_decode(vae, z)


def _radius(mass_by_distance: np.ndarray, share: float) -> int:
    cum = np.cumsum(mass_by_distance) / mass_by_distance.sum()
    return int(np.searchsorted(cum, share - 1e-12))


def receptive_field(vae, latent_size: tuple[int, int, int] = (3, 16, 16), *, share: float = 0.99, seed: int = 0) -> dict:
    """Effective spatial radius and temporal reach (latent units) of the centre pixel of the last frame.

    Returns the radii holding ``share`` of the gradient mass, the full profiles and the
    derived tile overlap (``2 * spatial radius``).
    """
    if not 0 < share <= 1:
        raise ValueError(f"share={share} must be in (0, 1]")
    family = family_of(vae)
    t, h, w = latent_size
    family.check_latent_frames(t)
    p = next(vae.parameters())
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(1, latent_channels(vae), t, h, w, generator=g).to(p).requires_grad_(True)
    with torch.enable_grad():
        out = _differentiable_decode(vae, z)
        frame, cy, cx = out.shape[2] - 1, out.shape[3] // 2, out.shape[4] // 2
        out[0, :, frame, cy, cx].sum().backward()
    grad = z.grad.detach().abs().sum(dim=(0, 1)).double().cpu().numpy()  # (t, h, w)
    s = family.spatial_compression
    ly, lx = cy // s, cx // s
    yy, xx = np.meshgrid(np.arange(h) - ly, np.arange(w) - lx, indexing="ij")
    cheb = np.maximum(np.abs(yy), np.abs(xx))
    spatial = grad.sum(axis=0)
    by_dist = np.bincount(cheb.ravel(), weights=spatial.ravel())
    temporal = grad.sum(axis=(1, 2))[::-1]  # index 0 = the frame's own latent frame, 1 = one back, ...
    r = _radius(by_dist, share)
    return {
        "family": family.name,
        "weights": getattr(vae, "weights_source", "unknown"),
        "latent_size": latent_size,
        "share": share,
        "spatial_radius": r,
        "spatial_profile": (by_dist / by_dist.sum()).tolist(),
        "radii": {q: _radius(by_dist, q) for q in (0.5, 0.9, 0.99)},
        "temporal_reach": _radius(temporal, share),
        "temporal_profile": (temporal / temporal.sum()).tolist(),
        "nonzero_radius": int(cheb[spatial > 0].max()) if (spatial > 0).any() else 0,
        "derived_overlap": 2 * r,
        "limited_by_size": r >= min(ly, lx, h - 1 - ly, w - 1 - lx),
    }


def zero_weights(module: torch.nn.Module) -> list[str]:
    """Names of ``module``'s parameters, biases aside, that are exactly zero everywhere.

    Explains a receptive field of 0 on untrained weights: a residual branch multiplied by a zero-initialised scale
    (a ViT decoder's blocks scale both branches by such a ``scale1``/``scale2``) adds nothing, so attention and MLP
    pass their input through.
    Some zero parameters are harmless (a mixing logit of 0 is a 50/50 mix); the list is evidence, not a verdict.
    """
    return [n for n, p in module.named_parameters() if not n.endswith("bias") and not bool(p.detach().any())]


@contextlib.contextmanager
def filled_weights(module: torch.nn.Module, names: list[str], value: float = 1.0):
    """Temporarily set the parameters ``names`` of ``module`` (e.g. :func:`zero_weights`) to ``value``; restored on
    exit. What the architecture reaches once those weights are not zero, as any trained model's are."""
    params = [module.get_parameter(n) for n in names]
    saved = [p.detach().clone() for p in params]
    try:
        with torch.no_grad():
            for p in params:
                p.fill_(value)
        yield module
    finally:
        with torch.no_grad():
            for p, old in zip(params, saved):
                p.copy_(old)


def minimal_overlap(vae, z: torch.Tensor, count: int = 2, *, tol: float = ONE_8BIT_LEVEL, blend: str = "linear",
                    overlaps=None) -> dict:
    """Smallest overlap (latent px) at which ``count`` x ``count`` tiles decode within ``tol`` (max abs) of the full decode.

    The tile size follows the overlap (:meth:`TilePlan.for_count`), so every overlap in the sweep is
    the overlap the tiles really have.
    """

    ref = decode_full(vae, z).video
    hw = tuple(z.shape[-2:])
    overlaps = list(range(min(hw))) if overlaps is None else list(overlaps)
    rows, found = [], None
    for o in overlaps:
        try:
            plan = TilePlan.for_count(hw, count, o)
        except ValueError:  # tiles would have to be larger than the latent
            break
        res = decode_tiled(vae, z, tile=plan.tile, overlap=o, blend=blend)
        c = compare(ref, res.video)
        rows.append({"overlap": o, "tile": plan.tile, "max_abs": c["max_abs"], "psnr_db": c["psnr_db"]})
        if c["max_abs"] <= tol:
            found = o
            break
    return {"count": count, "tol": tol, "blend": blend, "minimal_overlap": found, "sweep": rows}
