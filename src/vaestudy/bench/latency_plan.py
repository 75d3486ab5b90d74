"""What notebook 04 measures for one family: frame counts, sizes, chunks, tiles and strategies, all derived from the
family's registry rules (frame rule, chunk rules, the 3-D tile grid of a tiles-only decode) and the strategy table."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vaestudy.decode.common import own_tile_grid
from vaestudy.decode.strategies import no_prefix_reason, strategies_for
from vaestudy.registry.families import family_of
from vaestudy.registry.family import VAEFamily

CHUNK_CANDIDATES = (1, 2, 4)  # latent frames per chunk tried, kept where the family's chunk rules allow them


@dataclass(frozen=True)
class LatencyPlan:
    """Sizes in pixels, chunks and tiles in latent frames / latent pixels."""

    family: str
    frames: list[int]  # pixel frame counts of the length sweep
    base: tuple[int, int]  # (height, width) of the length and chunk sweeps
    sizes: list[tuple[int, int]]  # the resolution sweep
    stream: str | None  # the streaming strategy the bench times (None: none applies)
    chunks: list[int]  # latent frames per chunk of the chunk sweep (empty without a stream)
    tile_size: tuple[int, int]  # resolution of the tile sweep
    tiles: list[int]  # tile edges, latent px
    tile_overlap: int  # latent px
    tile_strategies: list[str]
    no_stream: str  # why nothing streams, a sentence from the rules ("" when ``stream`` is set)

    @property
    def f_mid(self) -> int:
        return self.frames[1]

    @property
    def f_max(self) -> int:
        return self.frames[-1]

    @property
    def c0(self) -> int | None:
        return self.chunks[0] if self.chunks else None

    @property
    def stream_strategies(self) -> list[str]:
        """``["full"]`` plus the stream, the strategies of the length and resolution sweeps."""
        return ["full"] + ([self.stream] if self.stream else [])


def bench_stream(family: VAEFamily) -> str | None:
    """The streaming strategy the bench times for ``family``: ``chunked`` (the cache carried) where it has a cache,
    ``chunked-naive`` where a latent prefix still decodes to a video prefix, None otherwise."""
    names = [s.name for s in strategies_for(family, bench=True)]
    return next((n for n in ("chunked", "chunked-naive") if n in names), None)


def no_stream_reason(family: VAEFamily) -> str:
    """Why the bench times no stream for ``family``, in a sentence from its rules ("" when it times one)."""
    if bench_stream(family) is not None:
        return ""
    return (f"{family.name} has no streamed decode to time: {no_prefix_reason(family)}. It streams only with "
            "overlapping windows on its frame grid (chunked-window, inexact), which the bench does not time; notebook "
            "01 and the atlas measure them. Only the whole-clip strategies are measured.")


def _grid_sides(vae: torch.nn.Module, wanted: list[int]) -> tuple[list[int], list[int]]:
    """Latent (heights, widths) for the ``wanted`` sides: the sides themselves, or, on a tiles-only decode's 3-D grid,
    the grid's smallest sides stepping by its strides (the smallest side on the grid is often larger than all)."""
    grid = own_tile_grid(vae)
    if grid is None:
        return list(wanted), list(wanted)
    (kh, sh), (kw, sw) = grid[1], grid[2]
    return [kh + sh * j for j in range(len(wanted))], [kw + sw * j for j in range(len(wanted))]


def latency_plan(vae: torch.nn.Module, fast: bool = True) -> LatencyPlan:
    """Every size notebook 04 times for ``vae``'s family, from its rules: the 2nd, 3rd and 5th valid frame counts
    (FAST; the 5th, 9th and 17th otherwise; the first three for a tiles-only decode), sides of 2-4 latent px (FAST;
    4-12 otherwise) or the smallest on a tiles-only decode's grid, the chunk candidates the family's chunk rules
    allow, and (FAST) tiles one latent px under the tile sweep's shorter side with overlap 1: 2 x 2 tiles."""
    family = family_of(vae)
    s = family.spatial_compression
    valid = family.valid_frame_counts(400)
    grid = own_tile_grid(vae) is not None  # a tiles-only decode: its smallest sizes already cost many small ones
    frames = [valid[k] for k in ((0, 1, 2) if grid else (1, 2, 4) if fast else (4, 8, 16))]
    heights, widths = _grid_sides(vae, [2, 3, 4] if fast else [4, 8, 12])
    base_h, base_w = _grid_sides(vae, [2] if fast else [8])
    sizes = [(h * s, w * s) for h, w in zip(heights, widths)]
    stream = bench_stream(family)
    chunks = [c for c in CHUNK_CANDIDATES if c >= family.chunk_min and c % family.chunk_multiple == 0] if stream else []
    if stream and not chunks:
        chunks = [family.default_chunk]
    names = [x.name for x in strategies_for(family, bench=True)]
    tile_strategies = [n for n in ("tiled", "tiled+chunked") if n in names]
    return LatencyPlan(
        family=family.name, frames=frames, base=(base_h[0] * s, base_w[0] * s), sizes=sizes, stream=stream,
        # FAST: tiles one latent px smaller than the tile sweep's shorter side, so 2 x 2 tiles (2 px at 3 x 3 latent)
        chunks=chunks, tile_size=sizes[1], tiles=[min(heights[1], widths[1]) - 1] if fast or grid else [4, 6],
        tile_overlap=1 if fast or grid else 2,
        tile_strategies=tile_strategies, no_stream=no_stream_reason(family))
