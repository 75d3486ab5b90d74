"""CI tier for notebooks 01 and 02 across every registry family, without executing them.

``tests/test_notebooks_families.py`` executes notebook 01 once per family (opt-in: 15 executions exceed CI's budget).
These tests check, in seconds, what those executions would otherwise find one family at a time: the sizes the two
notebooks derive from the registry's rules are valid for every family (frame rule, a tiles-only decode()'s tile grid,
2x2 tiles at every overlap swept, every strategy's parameters), and the streamed row is the family's stream or a
sentence saying why nothing streams. Plus the probe facts the notebooks report: a tiles-only decode() is
differentiated through its one-pass decoder, and a radius of 0 is explained by zero-initialised weights.
"""

from __future__ import annotations

from types import SimpleNamespace

import diffusers
import pytest
import torch

from conftest import assert_bit_equal
from vaestudy.data import clip_info
from vaestudy.decode import TilePlan
from vaestudy.decode.common import check_own_tiles, latent_size_at_least, pixel_size_at_least
from vaestudy.decode.strategies import STRATEGIES, resolve, strategies_for, stream_strategy, stream_unavailable
from vaestudy.decode.streams import latent_frames_streamed, stream_plan
from vaestudy.measure.probe import filled_weights, receptive_field, zero_weights
from vaestudy.registry import FAMILIES, load_vae

# (latent frames, latent side) each notebook asks pixel_size_at_least / latent_size_at_least for (FAST and full)
NB01_DECODE = ((3, 8), (5, 16))
NB01_PROBE = ((3, 16), (3, 32))
NB02_DECODE = ((2, 8), (5, 16))
NB02_PROBE = ((1, 12), (3, 16))
OVERLAPS = (0, 2, 4)  # notebook 02's FAST sweep; notebook 01's is the part of it that fits
CLIP = "bikes"  # notebook 02's clip


def _model(family):
    """What the size rules read: the family alone, or, for a tiles-only decode(), its tile grid, which lives on the
    model (built on the meta device: no weights, no memory)."""
    if family.decode_tiling != "only":
        return SimpleNamespace(_vaestudy_family=family)
    with torch.device("meta"):
        vae = getattr(diffusers, family.diffusers_class)(**family.tiny_config)
    vae._vaestudy_family = family
    return vae


@pytest.mark.parametrize("name", list(FAMILIES))
def test_notebook_sizes_are_valid_for_every_family(name):
    family = FAMILIES[name]
    vae = _model(family)
    nb01 = [(latent_frames_streamed(family, lf), side) for lf, side in NB01_DECODE]  # notebook 01 streams >= 2 steps
    for lf, side in nb01 + list(NB02_DECODE):
        frames, size = pixel_size_at_least(vae, lf, side)
        _, t, h, w = family.latent_shape(frames, *size)  # ValueError for a frame count or size the family refuses
        assert (t, h, w) == latent_size_at_least(vae, lf, side)
        assert t >= lf and h >= side and w >= side
        check_own_tiles(vae, (t, h, w))
        for o in OVERLAPS:
            plan = TilePlan.for_count((h, w), 2, o)  # 2x2 tiles, each smaller than the latent
            assert plan.tile[0] < h
        for s in strategies_for(family):
            resolve(s.name, family, (t, h, w))  # every strategy row's parameters are valid at this size
    for lf, side in nb01:  # notebook 01's stream row is a stream, not one window that is the family's own decode
        t = latent_size_at_least(vae, lf, side)[0]
        assert len(stream_plan(family, t)) >= 2
    for lf, side in NB01_PROBE + NB02_PROBE:
        t, h, w = latent_size_at_least(vae, lf, side)
        family.check_latent_frames(t)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_notebook_02_clip_fits(name):
    family = FAMILIES[name]
    info = clip_info(CLIP)
    for lf, side in NB02_DECODE:
        frames, (h, w) = pixel_size_at_least(_model(family), lf, side)
        scale = max(0.5, h / info["height"], w / info["width"])  # notebook 02's SCALE
        assert round(info["height"] * scale) >= h and round(info["width"] * scale) >= w
        assert frames <= info["frames"]


@pytest.mark.parametrize("name", list(FAMILIES))
def test_streamed_row_is_the_familys_stream_or_a_sentence(name):
    family = FAMILIES[name]
    stream = stream_strategy(family)
    names = [s.name for s in strategies_for(family)]
    if stream is None:
        assert not any("chunk" in STRATEGIES[n].params for n in names)
        sentence = stream_unavailable(family)
        assert family.name in sentence and "No streamed decode" in sentence
    else:
        assert stream in names and stream_unavailable(family) == ""
        assert stream == ("chunked" if family.streamable else "chunked-window")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_notebook_01_bad_frame_count_is_refused(name):
    family = FAMILIES[name]
    _, _, base, step = family.frame_rule
    bad = family.valid_frame_counts(base + 4 * step)[4] + 1 if step > 1 else 0  # notebook 01's BAD_FRAMES
    with pytest.raises(ValueError, match="frames"):
        family.latent_shape(bad, 64 * family.spatial_compression, 64 * family.spatial_compression)


def test_probe_differentiates_a_tiles_only_decode():
    """A decode() with no untiled path is probed through the one pass each of its tiles gets: a gradient reaches
    the latent (the probe once ran that pass under no_grad and found none)."""
    tiles_only = [f.name for f in FAMILIES.values() if f.decode_tiling == "only"]
    assert tiles_only, "no family's decode() is tiles-only: the probe path this protects is unused"
    vae = load_vae(tiles_only[0], "tiny", seed=0)
    family = FAMILIES[tiles_only[0]]
    rf = receptive_field(vae, (family.latent_frames_at_least(1), 6, 6))  # one pass: any size, not only the tile grid
    assert sum(rf["spatial_profile"]) == pytest.approx(1.0)
    assert rf["nonzero_radius"] >= 1  # convolutions reach past the pixel's own latent pixel


def test_zero_initialised_residual_scales_make_the_probe_radius_zero():
    """MiniMax-H3's ViT decoder multiplies each residual branch by a scale diffusers initialises to zero
    (``scale1``/``scale2``): as initialised (tiny weights) every block is the identity and the decoder maps each latent
    pixel alone, so the probe's radius is 0 and the zero scales are named. With the scales non-zero it is not."""
    vae = load_vae("minimax-h3", "tiny", seed=0)
    size = latent_size_at_least(vae, 1, 6)
    assert receptive_field(vae, size)["nonzero_radius"] == 0
    zeros = zero_weights(vae.decoder)
    assert any(n.split(".")[-1].startswith("scale") for n in zeros)
    before = [p.clone() for p in vae.decoder.parameters()]
    with filled_weights(vae.decoder, zeros, 1.0):
        assert receptive_field(vae, size)["nonzero_radius"] > 0
    for a, b in zip(before, vae.decoder.parameters()):  # restored on exit
        assert_bit_equal(b.detach(), a, what="decoder parameter",
                         proof="filled_weights copies the saved tensors back: no arithmetic touches them")
