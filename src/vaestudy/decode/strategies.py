"""The one strategy table: every decode strategy, its parameters with defaults and validation, and its chunks.

Every caller reads :data:`STRATEGIES` — the bench (what it times), ``vaestudy decode-check`` and
:func:`vaestudy.guide.comparisons.strategy_table` (what they compare), the planner (what it searches)
and the notebooks. Adding a strategy is one :class:`Strategy` entry here.

Parameters, all in latent units: ``chunk`` (latent frames per streamed step; default the family's
smallest valid chunk), ``tile`` and ``overlap`` (latent pixels per axis; default a 2x2 plan with
``overlap`` 2, see :func:`~vaestudy.decode.tiled.default_tile_plan`), ``blend`` (pixel-space ramp).
:func:`resolve` fills in the defaults and raises ``ValueError`` naming the parameter before any decode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from vaestudy.decode.chunked import MODES, decode_chunked, iter_chunked
from vaestudy.decode.common import Chunk, DecodeResult, timed_single
from vaestudy.decode.full import decode_full, decode_single_pass
from vaestudy.decode.streams import check_windows, stream_chunk, stream_plan, window_context
from vaestudy.decode.tiled import (
    BLENDS,
    TilePlan,
    _pair,
    decode_diffusers_tiled,
    decode_tiled,
    default_tile_plan,
)
from vaestudy.decode.tiled_chunked import decode_tiled_chunked, iter_tiled_chunked
from vaestudy.registry.families import family_of
from vaestudy.registry.family import VAEFamily

PARAMETERS = ("chunk", "tile", "overlap", "blend")


@dataclass(frozen=True)
class Strategy:
    """One way to decode a latent.

    ``streaming``: frames come out chunk by chunk (time to first frame below the total);
    ``needs_cache``: only for families whose decoder carries a temporal cache;
    ``params``: which of :data:`PARAMETERS` it takes; ``exact_for(family)``: True when, by construction,
    it performs the family decode's arithmetic (possibly in another order) — a fact about the math,
    measured separately by the oracle; ``run(vae, z, **params)``: the whole :class:`DecodeResult`;
    ``chunks(vae, z, **params)``: the frames as they become final.
    """

    name: str
    summary: str
    streaming: bool
    needs_cache: bool
    params: tuple[str, ...]
    exact_for: Callable[[VAEFamily], bool]
    run: Callable[..., DecodeResult]
    chunks: Callable[..., Iterator[Chunk]]
    in_bench: bool = True  # the bench and the planner time it (the rest are comparisons for decode-check)
    # takes whole clips on a fixed frame grid (where a latent prefix is not a video prefix) as its chunks
    on_frame_grid: bool = False

    def applies_to(self, family: VAEFamily) -> bool:
        if self.needs_cache and not family.streamable:
            return False
        if "chunk" in self.params and not family.causal_frames and not self.on_frame_grid:
            return False  # a latent prefix does not decode to a video prefix: only whole windows on the grid apply
        if self.name == "diffusers-tiled":
            return has_diffusers_spatial_tiles(family)
        return True


def has_diffusers_spatial_tiles(family: VAEFamily) -> bool:
    """The family's ``enable_tiling`` takes the tile size and stride (or overlap factors) per axis that
    :func:`~vaestudy.decode.tiled.decode_diffusers_tiled` passes, and its decode() is untiled by default."""
    d = family.tiling_defaults
    return family.decode_tiling == "off" and "tile_sample_min_height" in d and (
        "tile_sample_stride_height" in d or "tile_overlap_factor_height" in d)


def _whole(run):
    """Chunks of a strategy that produces the whole video at once: one chunk, timed."""
    def chunks(vae, z, **params):
        return timed_single(vae, lambda v, x: run(v, x, **params).video, z)
    return chunks


def _tiled(vae, z, *, tile, overlap, blend="linear"):
    return decode_tiled(vae, z, tile=tile, overlap=overlap, blend=blend)


def _diffusers_tiled(vae, z, *, tile, overlap):
    s = family_of(vae).spatial_compression
    plan = TilePlan.build(tuple(z.shape[-2:]), tile, overlap)
    tile_px = tuple(t * s for t in plan.tile)
    stride_px = tuple((t - o) * s for t, o in zip(plan.tile, plan.overlap))
    return decode_diffusers_tiled(vae, z, tile_px=tile_px, stride_px=stride_px, check_size=False)


def _chunked(mode):
    def run(vae, z, *, chunk, overlap=None, blend="linear"):
        kw = {} if overlap is None else {"overlap": overlap}
        return decode_chunked(vae, z, chunk, mode=mode, blend=blend, **kw)

    def chunks(vae, z, *, chunk, overlap=None, blend="linear"):
        kw = {} if overlap is None else {"overlap": overlap}
        return iter_chunked(vae, z, chunk, mode=mode, blend=blend, **kw)
    return run, chunks


def _tiled_chunked_run(vae, z, *, chunk, tile, overlap, blend="linear"):
    return decode_tiled_chunked(vae, z, chunk, tile=tile, overlap=overlap, blend=blend)


def _tiled_chunked_chunks(vae, z, *, chunk, tile, overlap, blend="linear"):
    return iter_tiled_chunked(vae, z, chunk, tile=tile, overlap=overlap, blend=blend)


def _never(family: VAEFamily) -> bool:
    return False


def _always(family: VAEFamily) -> bool:
    return True


def _cache_exact(family: VAEFamily) -> bool:
    return family.streams_exactly


def _per_pixel_norm(family: VAEFamily) -> bool:
    return family.norm == "rms"


_cache_run, _cache_chunks = _chunked("cache")
_naive_run, _naive_chunks = _chunked("naive")
_window_run, _window_chunks = _chunked("window")

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("full", "the family's own decode() (the reference)", False, False, (), _always,
             lambda vae, z: decode_full(vae, z), _whole(lambda vae, z: decode_full(vae, z))),
    Strategy("single-pass", "every latent frame in one decoder call through a fresh cache", False, True, (),
             _per_pixel_norm,
             lambda vae, z: decode_single_pass(vae, z), _whole(lambda vae, z: decode_single_pass(vae, z)),
             in_bench=False),
    Strategy("chunked", "streaming with the decoder's causal cache carried between chunks", True, True,
             ("chunk",), _cache_exact, _cache_run, _cache_chunks),
    Strategy("chunked-naive", "every chunk decoded as its own clip (one latent frame of context, no cache)", True,
             False, ("chunk",), _never, _naive_run, _naive_chunks),
    Strategy("chunked-window", "overlapping windows of latent frames, blended (families without a cache)", True,
             False, ("chunk", "overlap", "blend"), _never, _window_run, _window_chunks, in_bench=False,
             on_frame_grid=True),
    Strategy("tiled", "our tile plan, each tile through the family's decode, blended in pixel space", False, False,
             ("tile", "overlap", "blend"), _never, _tiled, _whole(_tiled)),
    Strategy("tiled+chunked", "every spatial tile streamed through time with its own cache, blended", True, True,
             ("chunk", "tile", "overlap", "blend"), _never, _tiled_chunked_run, _tiled_chunked_chunks),
    Strategy("diffusers-tiled", "diffusers' enable_tiling path at the same tile plan, for comparison", False, False,
             ("tile", "overlap"), _never, _diffusers_tiled, _whole(_diffusers_tiled), in_bench=False),
)}
assert set(MODES) == {"cache", "naive", "window"}  # the three chunked entries above

BENCH_STRATEGIES = tuple(n for n, s in STRATEGIES.items() if s.in_bench)
STREAMING = tuple(n for n, s in STRATEGIES.items() if s.streaming)


def get_strategy(name: str) -> Strategy:
    """The table entry for ``name``; ValueError listing the valid names otherwise."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy={name!r} is unknown; valid: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def strategies_for(family: VAEFamily, *, bench: bool = False) -> list[Strategy]:
    """The strategies that apply to ``family`` (only the bench's with ``bench``), in table order.

    ``chunked-window`` stands in for ``chunked`` where a family has no cache, and is left out where it has one. On a
    fixed frame grid (a latent prefix is not a video prefix) it is the only chunked strategy: whole windows on the grid.
    """
    out = []
    for s in STRATEGIES.values():
        if (bench and not s.in_bench) or not s.applies_to(family):
            continue
        if s.name == "chunked-window" and family.streamable:
            continue
        out.append(s)
    return out


def stream_strategy(family: VAEFamily) -> str | None:
    """The strategy that streams ``family`` closest to its own decode: ``chunked`` (the cache carried) where it has
    a cache, ``chunked-window`` (overlapping windows, inexact; on a fixed frame grid every window a valid clip) where
    it has none, None where the table offers neither (see :func:`stream_unavailable`)."""
    names = [s.name for s in strategies_for(family)]
    return next((n for n in ("chunked", "chunked-window") if n in names), None)


def no_prefix_reason(family: VAEFamily) -> str:
    """Why a prefix of ``family``'s latent does not decode to a prefix of its video, from its rules (a clause)."""
    lbase, lstep, pbase, pstep = family.frame_rule
    if family.per_frame_latents:
        return ("its decode() takes one latent per frame and mixes the frames of the whole clip in time "
                "(compression 1x in time), so a chunk of latents is a different clip")
    return (f"its latent frame counts are {lbase} + {lstep}k (pixel frames {pbase} + {pstep}k), so a prefix of the "
            f"latent is not a prefix of the video")


def stream_unavailable(family: VAEFamily) -> str:
    """Why nothing streams ``family``, in a sentence from its rules ("" where :func:`stream_strategy` names one)."""
    if stream_strategy(family) is not None:
        return ""
    return (f"No streamed decode applies to {family.name}: {no_prefix_reason(family)}; the chunked strategies "
            f"({', '.join(n for n in STREAMING if 'chunk' in get_strategy(n).params)}) are left out.")


def resolve(name: str, family: VAEFamily, latent_shape: tuple[int, int, int], *, chunk: int | None = None,
            tile=None, overlap=None, blend: str | None = None) -> dict:
    """The strategy's parameters for a latent of ``(frames, height, width)``, defaults filled in and validated.

    Returns only the parameters the strategy takes (tile and overlap as (height, width) pairs in latent pixels,
    ``overlap`` in latent frames for ``chunked-window``). ValueError, naming the parameter, for anything invalid
    and for a strategy the family cannot run — before any model is loaded or any decode runs.
    """
    s = get_strategy(name)
    if not s.applies_to(family):
        runnable = ", ".join(x.name for x in strategies_for(family))
        if s.needs_cache and not family.streamable:
            why = f"needs a temporal cache; {family.name} has none"
        elif "chunk" in s.params:
            why = (f"decodes chunks of latent frames; {family.name}'s frames do not follow the causal prefix rule "
                   f"(valid latent counts {family.frame_rule[0]} + {family.frame_rule[1]}*k)")
        else:
            why = f"does not apply to {family.name}: its decode() has no per-axis spatial tiles to set"
        raise ValueError(f"strategy={name!r} {why} (use {runnable})")
    lt, lh, lw = latent_shape
    out: dict = {}
    if "chunk" in s.params:
        out["chunk"] = stream_chunk(family) if chunk is None else chunk
        stream_plan(family, lt, out["chunk"])  # validates chunk (on a frame grid: a multiple of its latent step)
    if "tile" in s.params:
        if tile is None:
            o = 2 if overlap is None else _pair(overlap, "overlap")[0]
            plan = default_tile_plan((lh, lw), o)
        else:
            plan = TilePlan.build((lh, lw), tile, 2 if overlap is None else overlap)
        out["tile"], out["overlap"] = tuple(plan.tile), tuple(plan.overlap)
    elif "overlap" in s.params:  # temporal windows: latent frames of context
        out["overlap"] = window_context(family) if overlap is None else overlap
        if not isinstance(out["overlap"], int) or isinstance(out["overlap"], bool) or out["overlap"] < 1:
            raise ValueError(f"overlap={out['overlap']!r} must be an integer >= 1 latent frame for {name}")
        if "chunk" in out:  # every window (its context and its chunk) must be a clip the family decodes
            check_windows(family, lt, out["chunk"], out["overlap"])
    if "blend" in s.params:
        out["blend"] = "linear" if blend is None else blend
        if out["blend"] not in BLENDS:
            raise ValueError(f"blend={out['blend']!r} is unknown; valid: {', '.join(BLENDS)}")
    return out


def run_strategy(name: str, vae, z: torch.Tensor, **params) -> DecodeResult:
    """Decode ``z`` with strategy ``name`` and resolved ``params`` (see :func:`resolve`)."""
    return get_strategy(name).run(vae, z, **params)


def iter_strategy(name: str, vae, z: torch.Tensor, **params) -> Iterator[Chunk]:
    """Chunks of strategy ``name`` as they become final (one chunk for strategies that are not streaming)."""
    return get_strategy(name).chunks(vae, z, **params)


__all__ = ["BENCH_STRATEGIES", "PARAMETERS", "STRATEGIES", "STREAMING", "Strategy", "get_strategy",
           "iter_strategy", "resolve", "run_strategy", "strategies_for", "stream_strategy", "stream_unavailable"]
