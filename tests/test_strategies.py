"""The one strategy table: what it claims about each strategy holds on tiny configs of the real classes."""

from __future__ import annotations

import pytest
import torch

from conftest import FP32_EXACT, assert_video_close
from vaestudy import FAMILIES, STRATEGIES, get_family, load_vae, random_latent, resolve, run_strategy, strategies_for
from vaestudy.decode.strategies import BENCH_STRATEGIES, STREAMING, iter_strategy


def test_every_entry_is_complete_and_streaming_is_read_from_the_table():
    assert {"full", "tiled", "chunked", "chunked-naive", "tiled+chunked"} <= set(BENCH_STRATEGIES)
    assert set(STREAMING) == {n for n, s in STRATEGIES.items() if s.streaming}
    for name, s in STRATEGIES.items():
        assert s.name == name and s.summary and callable(s.run) and callable(s.chunks)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_family_gets_only_the_strategies_it_can_run(family):
    fam = get_family(family)
    names = [s.name for s in strategies_for(fam)]
    assert ("chunked" in names) == fam.streamable and ("tiled+chunked" in names) == fam.streamable
    # windows stand in wherever there is no cache (on a fixed frame grid, whole windows on the grid); the chunk
    # strategies that take a latent prefix for a video prefix only where that holds
    assert ("chunked-window" in names) == (not fam.streamable)
    assert ("chunked-naive" in names) == fam.causal_frames
    if not fam.streamable:
        with pytest.raises(ValueError, match=f"strategy='chunked' needs a temporal cache; {family} has none"):
            resolve("chunked", fam, (3, 8, 8))


def test_resolve_fills_defaults_from_the_registry_and_names_bad_parameters():
    wan, cog = get_family("wan2.1"), get_family("cogvideox")
    assert resolve("chunked", wan, (5, 8, 8)) == {"chunk": 1}
    assert resolve("chunked", cog, (5, 8, 8)) == {"chunk": 2}  # CogVideoX's smallest valid chunk
    assert resolve("tiled", wan, (5, 8, 8)) == {"tile": (5, 5), "overlap": (2, 2), "blend": "linear"}
    assert resolve("chunked-window", get_family("hunyuanvideo"), (5, 8, 8))["overlap"] == 2
    for name, kw, match in (("chunked", {"chunk": 1}, "chunk=1 is invalid for cogvideox"),
                            ("chunked", {"chunk": 0}, "chunk=0"), ("tiled", {"overlap": -1}, "overlap"),
                            ("tiled", {"blend": "soft"}, "blend='soft'"), ("sideways", {}, "strategy='sideways'")):
        with pytest.raises(ValueError, match=match):
            resolve(name, cog, (5, 8, 8), **kw)


@pytest.mark.parametrize("family", ["wan2.1", "cogvideox"])
def test_exact_for_matches_what_the_decode_measures(family):
    """A strategy the table calls exact for a family equals the family's decode within fp32 error; the cached
    stream of a GroupNorm family is not called exact and is not."""
    vae = load_vae(family, "tiny")
    z = random_latent(vae, 17, (32, 32), seed=0)
    fam = get_family(family)
    full = run_strategy("full", vae, z).video
    chunked = run_strategy("chunked", vae, z, **resolve("chunked", fam, tuple(z.shape[2:]))).video
    if STRATEGIES["chunked"].exact_for(fam):
        assert_video_close(chunked, full, atol=FP32_EXACT)
    else:
        assert (chunked - full).abs().max() > 1e-3
    frames = torch.cat([c.frames for c in iter_strategy("chunked", vae, z, chunk=fam.default_chunk)], dim=2)
    assert_video_close(frames, chunked, atol=FP32_EXACT)  # the chunks of a run are the video of that run


def test_latent_frames_streamed_is_the_shortest_valid_latent_of_two_steps():
    from vaestudy.decode.streams import latent_frames_streamed, stream_plan

    for fam in FAMILIES.values():
        n = latent_frames_streamed(fam, 3)
        fam.check_latent_frames(n)
        assert n >= 3 and len(stream_plan(fam, n)) >= 2
        shorter = [k for k in range(3, n) if fam.latent_frames_at_least(k) == k]
        assert all(len(stream_plan(fam, k)) < 2 for k in shorter)
    with pytest.raises(ValueError, match="steps=0"):
        latent_frames_streamed(get_family("wan2.1"), 3, steps=0)
