"""The sizes, frame counts and stream chunks that notebooks 03 and 06 derive from the registry's rules are valid for
every family (pure rules: no model is built, so this stays in the fast tier)."""

from __future__ import annotations

import itertools

import pytest

from vaestudy.guide.quality import groupnorm_families
from vaestudy.pipelines import streaming as S
from vaestudy.registry import FAMILIES
from vaestudy.registry.families import DEFAULT_FAMILY

ALL = list(FAMILIES.values())
IDS = list(FAMILIES)


def _check_plan(fam, latent_frames: int, chunk: int) -> list[tuple[int, int]]:
    """A stream plan covers [0, latent_frames) in order, every prefix a valid clip, every later step one chunk."""
    plan = S.stream_plan(fam, latent_frames, chunk)
    assert plan[0][0] == 0 and plan[-1][1] == latent_frames
    assert all(a == b0 for (_, b0), (a, _) in itertools.pairwise(plan))
    for _, b in plan:
        fam.check_latent_frames(b)  # a prefix of the stream decodes as a clip of its own
    assert all(b - a == chunk for a, b in plan[1:])
    return plan


@pytest.mark.parametrize("fam", ALL, ids=IDS)
def test_notebook_03_sizes_are_valid_and_stream_in_several_steps(fam):
    chunk = S.stream_chunk(fam)
    S.check_stream_chunk(fam, chunk)
    frames = S.frames_at_least(fam, 17)
    fam.check_frames(frames)
    assert frames >= 17
    size = S.size_at_least(fam, 48)
    assert size >= 48 and size % fam.spatial_compression == 0
    latent = fam.latent_shape(frames, size, size)[1]
    plan = _check_plan(fam, latent, chunk)
    assert len(plan) >= 2  # at least one chunk boundary to score
    # the pixel frames the steps add up to the clip's
    px = [fam.pixel_frames(b) - (fam.pixel_frames(a) if a else 0) for a, b in plan]
    assert sum(px) == frames and all(n > 0 for n in px)


@pytest.mark.parametrize("fam", ALL, ids=IDS)
def test_windowed_stream_windows_are_valid_clips(fam):
    """Without a cache every window (context + one step) must itself be a valid latent length."""
    chunk = S.stream_chunk(fam)
    ctx = S.window_context(fam)
    assert ctx >= 0
    latent = fam.latent_shape(S.frames_at_least(fam, 17), fam.spatial_compression, fam.spatial_compression)[1]
    for a, b in S.stream_plan(fam, latent, chunk)[1:]:
        fam.check_latent_frames(min(ctx, a) + b - a)  # the context is what has been streamed, up to ctx frames
    assert S.stream_kind(fam) == ("cache" if fam.streamable else "windows")
    assert S.stream_is_exact(fam) <= fam.streamable  # windows are never exact


@pytest.mark.parametrize("fam", ALL, ids=IDS)
def test_notebook_06_sizes_are_valid(fam):
    window = S.frames_at_least(fam, 2, steps=1)
    fam.check_frames(window)
    assert window > 1
    side = S.size_at_least(fam, 32, latent_min=2)
    assert side // fam.spatial_compression >= 2
    fam.latent_shape(window, side, side)
    chunk = S.stream_chunk(fam)
    first = S.first_chunk(fam, chunk)
    fam.check_latent_frames(first)
    fam.check_latent_frames(first + 3 * chunk)  # a stream of generated chunks stays a valid clip
    fam.check_latent_frames(fam.latent_frames_at_least(3))  # the split decode's latent frames
    fam.check_frames(S.context_frames(fam))
    assert S.context_frames(fam) > 1


@pytest.mark.parametrize("fam", ALL, ids=IDS)
def test_groupnorm_section_compares_two_cached_families_of_different_kinds(fam):
    names = groupnorm_families(fam)
    assert len(names) == 2 and len(set(names)) == 2
    a, b = (FAMILIES[n] for n in names)
    assert a.streamable and b.streamable
    assert {a.streams_exactly, b.streams_exactly} == {True, False}
    assert (fam.name in names) == fam.streamable


def test_grid_chunks_refuse_steps_off_the_grid():
    grid = [f for f in ALL if not f.causal_frames]
    assert grid, "the registry holds families on a fixed frame grid"
    for fam in grid:
        step = fam.frame_rule[1]
        if step > 1:
            with pytest.raises(ValueError, match="chunk"):
                S.check_stream_chunk(fam, step + 1)
        assert S.first_chunk(fam, S.stream_chunk(fam)) >= fam.frame_rule[0]


def test_the_default_run_keeps_its_sizes():
    """The CI run (the default family) must derive the sizes it always used: the checked outputs depend on them."""
    fam = FAMILIES[DEFAULT_FAMILY]
    assert S.frames_at_least(fam, 17) == 17 and S.size_at_least(fam, 48) == 48
    assert S.stream_chunk(fam) == fam.default_chunk
    assert S.frames_at_least(fam, 2, steps=1) == fam.valid_frame_counts(64)[1]
    assert S.size_at_least(fam, 32, latent_min=2) // fam.spatial_compression == 4
    assert fam.latent_frames_at_least(3) == 3
