"""Spatial tiling: our own tile plan and blend, and diffusers' ``enable_tiling`` path for comparison."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from vaestudy.clock import Clock
from vaestudy.decode.common import (
    Chunk,
    DecodeResult,
    call_decode,
    collect,
    family_decode_settings,
    model_device_dtype,
    timed_single,
    untiled_decode,
    validate_latent,
)
from vaestudy.registry.families import family_of

BLENDS = ("linear", "cosine", "none")


def _pair(v, name):
    if isinstance(v, int) and not isinstance(v, bool):
        return (v, v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(x, int) for x in v):
        return tuple(v)
    raise ValueError(f"{name}={v!r} must be an int or a (height, width) pair of ints")


def blend_ramp(n: int, kind: str) -> torch.Tensor:
    """Weights of the incoming tile across an overlap of n pixels; the outgoing tile gets the flip."""
    if kind not in BLENDS:
        raise ValueError(f"blend={kind!r} is unknown; valid: {', '.join(BLENDS)}")
    pos = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    if kind == "linear":
        return pos
    if kind == "cosine":
        return 0.5 - 0.5 * torch.cos(math.pi * pos)
    # hard cut at the middle of the overlap; the middle sample of an odd overlap is shared
    return torch.where(pos > 0.5, 1.0, torch.where(pos < 0.5, 0.0, 0.5)).double()


@dataclass(frozen=True)
class TilePlan:
    """Tiles over a latent of size (height, width), in latent pixels.

    Tiles start every ``tile - overlap``; the last tile in each direction is moved back to end
    at the border, so it may overlap its neighbour by more than ``overlap``.
    """

    height: int
    width: int
    tile: tuple[int, int]
    overlap: tuple[int, int]

    @classmethod
    def build(cls, latent_hw: tuple[int, int], tile, overlap) -> TilePlan:
        tile, overlap = _pair(tile, "tile"), _pair(overlap, "overlap")
        for axis, n, t, o in zip(("height", "width"), latent_hw, tile, overlap):
            if o < 0:
                raise ValueError(f"overlap={overlap} is negative along {axis}; overlap must be >= 0 latent pixels")
            if t < 1:
                raise ValueError(f"tile={tile} must be >= 1 latent pixel along {axis}")
            if t <= o:
                raise ValueError(f"tile={tile} must be larger than overlap={overlap} along {axis} (stride would be <= 0)")
            if t > n:
                raise ValueError(f"tile={tile} exceeds the latent {axis} {n}; use a tile <= {n}")
        return cls(latent_hw[0], latent_hw[1], tile, overlap)

    @classmethod
    def for_count(cls, latent_hw: tuple[int, int], count, overlap) -> TilePlan:
        """The smallest tiles that cover the latent with ``count`` tiles per axis at exactly ``overlap``."""
        count, overlap = _pair(count, "count"), _pair(overlap, "overlap")
        if min(count) < 1:
            raise ValueError(f"count={count} must be >= 1 tile per axis")
        tile = tuple(-(-(n + (k - 1) * o) // k) for n, k, o in zip(latent_hw, count, overlap))
        return cls.build(latent_hw, tile, overlap)

    @property
    def effective_overlap(self) -> tuple[int, int]:
        """Smallest overlap actually present between neighbours (the last tile may overlap more)."""
        out = []
        for axis in (0, 1):
            s, t = self.starts(axis), self.tile[axis]
            out.append(min((a + t - b for a, b in itertools.pairwise(s)), default=0))
        return tuple(out)

    def starts(self, axis: int) -> list[int]:
        n, t, o = (self.height, self.width)[axis], self.tile[axis], self.overlap[axis]
        s = list(range(0, max(n - t, 0) + 1, t - o))
        if s[-1] + t < n:
            s.append(n - t)
        return s

    @property
    def tiles(self) -> list[tuple[int, int, int, int]]:
        """(top, left, height, width) of every tile, row-major."""
        return [(y, x, self.tile[0], self.tile[1]) for y in self.starts(0) for x in self.starts(1)]

    def seams(self, axis: int, scale: int) -> list[float]:
        """Pixel coordinates of the middle of each overlap (where the blend crosses over)."""
        s, t = self.starts(axis), self.tile[axis]
        return [((a + t) * scale + b * scale) / 2 for a, b in itertools.pairwise(s)]

    def profile(self, axis: int, index: int, scale: int, blend: str) -> torch.Tensor:
        """1-D weight profile of tile ``index`` along ``axis`` in output pixels."""
        s, t = self.starts(axis), self.tile[axis]
        w = torch.ones(t * scale, dtype=torch.float64)
        if index > 0:
            ov = (s[index - 1] + t - s[index]) * scale
            if ov > 0:
                w[:ov] = blend_ramp(ov, blend)
        if index < len(s) - 1:
            ov = (s[index] + t - s[index + 1]) * scale
            if ov > 0:
                w[-ov:] = torch.minimum(w[-ov:], blend_ramp(ov, blend).flip(0))
        return w

    def weights(self, scale: int, blend: str) -> list[torch.Tensor]:
        """Per-tile (H, W) weight maps in output pixels, row-major like :attr:`tiles`."""
        ys, xs = self.starts(0), self.starts(1)
        out = []
        for i in range(len(ys)):
            py = self.profile(0, i, scale, blend)
            for j in range(len(xs)):
                out.append(torch.outer(py, self.profile(1, j, scale, blend)))
        return out


class TileBlender:
    """Accumulates weighted tiles of a (batch, 3, n, H, W) output and normalises at the end."""

    def __init__(self, plan: TilePlan, scale: int, blend: str, like: torch.Tensor, frames: int):
        self.plan, self.scale = plan, scale
        self.maps = [m.to(device=like.device, dtype=like.dtype) for m in plan.weights(scale, blend)]
        b = like.shape[0]
        self.acc = torch.zeros(b, 3, frames, plan.height * scale, plan.width * scale, dtype=like.dtype, device=like.device)
        self.wsum = torch.zeros(plan.height * scale, plan.width * scale, dtype=like.dtype, device=like.device)

    def add(self, index: int, tile_pixels: torch.Tensor) -> None:
        y, x, h, w = (v * self.scale for v in self.plan.tiles[index])
        m = self.maps[index]
        self.acc[..., y:y + h, x:x + w] += tile_pixels * m
        self.wsum[y:y + h, x:x + w] += m

    def result(self) -> torch.Tensor:
        return self.acc / self.wsum


def _iter_tiled(vae, z, plan: TilePlan, blend: str):
    family = family_of(vae)
    device, _ = model_device_dtype(vae)
    sw = Clock(device)
    blender = None
    for i, (y, x, h, w) in enumerate(plan.tiles):
        out = untiled_decode(vae, z[..., y:y + h, x:x + w])
        if blender is None:
            blender = TileBlender(plan, family.spatial_compression, blend, out, out.shape[2])
        blender.add(i, out)
    video = blender.result()
    dt, el = sw.lap()
    yield Chunk(video, 0, dt, el)


def decode_tiled(vae, z: torch.Tensor, tile=8, overlap=2, blend: str = "linear") -> DecodeResult:
    """Decode overlapping spatial tiles (sizes in latent pixels) with the family's own decode, then blend.

    Each tile goes through the family's untiled decode (:func:`~vaestudy.decode.common.untiled_decode`: its
    ``decode()`` with diffusers' tiling off, or one decoder pass where ``decode()`` only works tiled), whatever the
    class's calling conventions (per-frame latents, frames-first output).

    Blending happens in pixel space with weights that sum to one across each overlap
    (``linear`` or ``cosine`` ramps, or ``none``: a hard cut in the middle of the overlap).
    """
    family = validate_latent(vae, z)
    if blend not in BLENDS:
        raise ValueError(f"blend={blend!r} is unknown; valid: {', '.join(BLENDS)}")
    plan = TilePlan.build(tuple(z.shape[-2:]), tile, overlap)
    params = {"tile": plan.tile, "overlap": plan.overlap, "effective_overlap": plan.effective_overlap,
              "blend": blend, "tiles": len(plan.tiles)}
    s = family.spatial_compression
    extra = {"plan": plan, "seams_y": plan.seams(0, s), "seams_x": plan.seams(1, s)}
    return collect("tiled", _iter_tiled(vae, z, plan, blend), exact=len(plan.tiles) == 1, params=params,
                   vae=vae, extra=extra)


def decode_diffusers_tiled(vae, z: torch.Tensor, tile_px=None, stride_px=None, *, check_size: bool = True) -> DecodeResult:
    """Run diffusers' own ``enable_tiling`` path with explicit sizes (pixels), then restore the model.

    Traps this wrapper guards against: ``enable_tiling`` reads 0 as "keep the default"
    (``x or default``), so 0 is rejected here; tiling only starts when the video is larger
    than the tile; a 2-frame-batch family's tiled decode (``conv_cache``) never crops, so a tile/overlap pair that does not
    divide evenly returns a wrongly sized video without a word — ``check_size`` turns that
    into an error (set it False to see the symptom).
    """
    family = validate_latent(vae, z)
    d = family.tiling_defaults
    tile_px = _pair(tile_px if tile_px is not None else (d["tile_sample_min_height"], d["tile_sample_min_width"]), "tile_px")
    if stride_px is None:
        stride_px = ((d.get("tile_sample_stride_height") or round(tile_px[0] * (1 - d["tile_overlap_factor_height"]))),
                     (d.get("tile_sample_stride_width") or round(tile_px[1] * (1 - d["tile_overlap_factor_width"]))))
    stride_px = _pair(stride_px, "stride_px")
    s = family.spatial_compression
    for name, v in (("tile_px", tile_px), ("stride_px", stride_px)):
        if min(v) <= 0:
            raise ValueError(f"{name}={v} must be positive: diffusers' enable_tiling treats 0 as 'use the default'")
        if any(x % s for x in v):
            raise ValueError(f"{name}={v} must be multiples of the spatial compression {s}")
    if any(st > t for st, t in zip(stride_px, tile_px)):
        raise ValueError(f"stride_px={stride_px} must not exceed tile_px={tile_px} (tiles would leave gaps)")
    if "tile_overlap_factor_height" in family.tiling_defaults:  # this class takes overlap factors, not strides
        kwargs = {"tile_sample_min_height": tile_px[0], "tile_sample_min_width": tile_px[1],
                      "tile_overlap_factor_height": 1 - stride_px[0] / tile_px[0],
                      "tile_overlap_factor_width": 1 - stride_px[1] / tile_px[1]}
    else:
        kwargs = {"tile_sample_min_height": tile_px[0], "tile_sample_min_width": tile_px[1],
                      "tile_sample_stride_height": stride_px[0], "tile_sample_stride_width": stride_px[1]}
    if any(v == 0 for v in kwargs.values()):
        raise ValueError(f"derived tiling arguments {kwargs} contain 0, which diffusers reads as 'default'")
    saved = {k: getattr(vae, k) for k in list(kwargs) + ["tile_latent_min_height", "tile_latent_min_width"]
             if hasattr(vae, k)}
    applies = z.shape[-2] * s > tile_px[0] or z.shape[-1] * s > tile_px[1]

    def run(vae, z):
        with torch.no_grad(), family_decode_settings(vae, spatial_tiling=True):
            vae.enable_tiling(**kwargs)
            return call_decode(vae, z)

    try:
        res = collect("diffusers-tiled", timed_single(vae, run, z), exact=not applies,
                      params={"tile_px": tile_px, "stride_px": stride_px, "tiling_applied": applies}, vae=vae)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as exc:  # e.g. a last tile narrower than a reflect-padding conv's pad: diffusers' own limit
        raise ValueError(
            f"diffusers' tiled decode of {family.name} refuses tile_px={tile_px}, stride_px={stride_px} on a "
            f"{tuple(z.shape[-2:])} latent (its tiles start every stride up to the edge, so the last one may be a "
            f"sliver): {exc}") from exc
    finally:
        for k, v in saved.items():
            setattr(vae, k, v)
        vae.use_tiling = False
    expected = family.pixel_shape(*z.shape[2:])
    got = tuple(res.video.shape[1:])
    res.extra["size_ok"] = got == expected
    if check_size and got != expected:
        raise RuntimeError(
            f"diffusers tiled decode of {family.name} returned {got}, expected {expected}: tile_px={tile_px} and "
            f"stride_px={stride_px} disagree (this family's tiled decode does not crop); pick sizes whose "
            "overlap divides evenly, or pass check_size=False to inspect the symptom"
        )
    return res


def default_tile_plan(latent_hw: tuple[int, int], overlap: int = 2) -> TilePlan:
    """A 2x2 plan with ``overlap`` latent pixels; 1 tile along an axis too short for two overlapping tiles.

    Two tiles of ``ceil((n + overlap) / 2)`` fit an axis of ``n`` latent pixels when that is below ``n``, i.e.
    ``n >= overlap + 2``. ValueError when neither axis can be split: a "tiled" decode of one tile would be the full
    decode under another name.
    """
    if not isinstance(overlap, int) or overlap < 0:
        raise ValueError(f"overlap={overlap!r} must be an integer >= 0 latent pixels")
    counts = tuple(2 if n >= overlap + 2 else 1 for n in latent_hw)
    if counts == (1, 1):
        raise ValueError(f"latent {latent_hw[0]}x{latent_hw[1]} is too small to tile with overlap={overlap}: two "
                         f"tiles need at least {overlap + 2} latent pixels along an axis; use a larger size or a "
                         f"smaller overlap")
    return TilePlan.for_count(latent_hw, counts, tuple(overlap if k > 1 else 0 for k in counts))
