"""Storage arithmetic counts latent frames by each registry family's own frame rule (issue 20)."""

import pytest

from vaestudy.registry import FAMILIES
from vaestudy.storage import compression as C


@pytest.mark.parametrize("name", list(FAMILIES))
def test_latent_frames_follow_the_family_frame_rule(name):
    # every valid pixel count maps to the latent count the registry's latent_shape gives (non-causal grids included)
    f = FAMILIES[name]
    s = f.spatial_compression
    for frames in f.valid_frame_counts(f.frame_rule[2] + 3 * f.frame_rule[3]):
        assert C.latent_frames(name, frames) == f.latent_shape(frames, s, s)[1], frames
        assert C.latent_shape(name, frames, 2 * s, 3 * s) == f.latent_shape(frames, 2 * s, 3 * s)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_invalid_counts_are_refused_or_padded_up_to_the_next_valid_one(name):
    f = FAMILIES[name]
    _, _, base, step = f.frame_rule
    if step == 1:
        return  # every count is valid for a per-frame codec
    with pytest.raises(ValueError, match="frames"):
        C.latent_frames(name, base + 1)
    assert C.latent_frames(name, base + 1, pad="ceil") == f.latent_shape(base + step, s := f.spatial_compression, s)[1]
    if base > 1:
        with pytest.raises(ValueError, match=f"valid counts are {base} \\+ {step}k"):
            C.latent_frames(name, base - 1)
        assert C.latent_frames(name, base - 1, pad="ceil") == f.frame_rule[0]


def test_a_frame_grid_is_not_the_causal_rule():
    # the bug this protects against: 1 + (n - 1)/t for a family whose pixel counts start elsewhere
    for f in FAMILIES.values():
        if f.causal_frames:
            continue
        lbase, lstep, pbase, pstep = f.frame_rule
        assert C.latent_frames(f.name, pbase) == lbase
        assert C.latent_frames(f.name, pbase + pstep) == lbase + lstep
        assert C.get_codec(f.name).steady_t == pstep / lstep


def test_steady_rate_uses_the_frame_grid():
    # latent bytes per second over a long video approach the steady rate of the frame grid, for every family
    for name, f in FAMILIES.items():
        s = f.spatial_compression
        _, _, pbase, pstep = f.frame_rule
        frames = pbase + 1000 * pstep
        long_rate = C.latent_bytes(name, frames, s, s) / frames  # bytes per pixel frame
        steady = C.latent_bytes_per_second(name, s, s, 1.0)
        assert long_rate == pytest.approx(steady, rel=1e-2), name


def test_causal_codecs_keep_their_messages():
    with pytest.raises(ValueError, match="frames - 1=17"):
        C.latent_shape(next(n for n, f in FAMILIES.items() if f.frame_rule == (1, 1, 1, 4)), 18, 128, 128)
