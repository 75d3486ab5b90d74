"""What notebooks 00, 04, 05 and 07 derive from a family's rules is valid for every registry family (issue 20).

CI tier: tiny configs are built only where a rule needs the model (the 3-D tile grid of a tiles-only decode); nothing
is decoded. The notebooks themselves run per family with ``vaestudy report --model F --weights tiny``.
"""

import pytest

from vaestudy import bench as B
from vaestudy.bench.latency_plan import bench_stream, latency_plan, no_stream_reason
from vaestudy.decode.strategies import strategies_for
from vaestudy.guide.study import COST_FAMILIES
from vaestudy.guide.summary import measured_stand_in, rules_checklist
from vaestudy.registry import FAMILIES
from vaestudy.registry.load import load_vae
from vaestudy.storage import compression as C

NAMES = list(FAMILIES)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_00_sizes_are_valid(name):
    # FRAMES (3 latent frames, FAST), the held-out crops' frames (fewest valid >= 17) and the page's 64x96 frames
    f = FAMILIES[name]
    frames = f.pixel_frames(f.latent_frames_at_least(3))
    assert f.latent_shape(frames, 64, 96)[1] >= 3
    ho = min(n for n in f.valid_frame_counts(400) if n >= 17)
    lat = f.latent_shape(ho, 128, 128)[1]
    if f.causal_frames:  # the latent-group lines start inside the clip, in order
        starts = [f.latent_to_pixel_frames(0, g)[1] for g in range(1, lat)]
        assert starts == sorted(starts) and starts[-1] < ho


@pytest.mark.parametrize("name", NAMES)
def test_notebook_04_plan_is_valid(name):
    vae = load_vae(name, "tiny")
    p = latency_plan(vae, fast=True)
    f = FAMILIES[name]
    for frames in p.frames:
        f.check_frames(frames)
    assert len(set(p.frames)) == 3 and len(set(p.sizes)) == 3
    assert p.stream == bench_stream(f)
    assert (p.stream is None) == bool(p.no_stream) == bool(no_stream_reason(f))
    bench_names = [s.name for s in strategies_for(f, bench=True)]
    assert set(p.stream_strategies + p.tile_strategies) <= set(bench_names)
    for c in p.chunks:
        f.check_chunk(c)
    if p.stream:
        assert p.chunks
    else:
        assert name in p.no_stream and not p.chunks
    # every section of the notebook builds (the bench validates frame counts, sizes, chunks and tiles up front)
    common = {"model": name, "weights": "tiny", "repeats": 1, "warmup": 0}
    B.build_configs(frames=p.frames, sizes=[p.base], strategies=p.stream_strategies, chunk=p.c0,
                    consumers=["keep", "discard"], **common)
    B.build_configs(frames=[p.f_mid], sizes=p.sizes, strategies=p.stream_strategies, chunk=p.c0, **common)
    for k in p.chunks:
        B.build_configs(frames=[p.f_max], sizes=[p.base], strategies=[p.stream], chunk=k, **common)
    for t in p.tiles:
        B.build_configs(frames=[p.f_mid], sizes=[p.tile_size], strategies=p.tile_strategies, tile=t,
                        overlap=p.tile_overlap, **common)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_05_frames_are_valid(name):
    f = FAMILIES[name]
    for n in (9, 30, 33):  # the post-hoc clips: the fewest pixel frames holding n latent frames
        frames = f.pixel_frames(f.latent_frames_at_least(n))
        assert C.latent_frames(name, frames) == f.latent_shape(frames, 128, 128)[1] >= n
    win = f.pixel_frames(C.latent_frames(name, 17, pad="ceil"))  # 003's 17-frame window, on the family's grid
    f.check_frames(win)
    assert win >= 17 and C.latent_shape(name, win, 480, 832) == f.latent_shape(win, 480, 832)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_07_checklist_is_written_for_the_family(name):
    f = FAMILIES[name]
    rows = {r["goal"]: r for r in rules_checklist(name)}
    stream = rows["stream frames as they decode"]
    if f.streams_exactly:
        assert stream["choose"].startswith("chunked") and f.cache in stream["why"]
    elif f.streamable:
        assert "inexact" in stream["choose"] and f.cache in stream["why"]
    else:
        assert stream["choose"].startswith("full") or "nothing streams" in stream["choose"]
    assert f.frame_rule_text in rows["valid frame counts"]["choose"]
    tiling = rows["fit a large video in memory"]["choose"]
    assert ("only path" in tiling) == (f.decode_tiling == "only")
    assert ("by default" in tiling) == (f.decode_tiling == "default")
    stand_in = measured_stand_in(name)
    assert stand_in in COST_FAMILIES
    s = FAMILIES[stand_in]
    assert stand_in == name or (s.streams_exactly, s.streamable) == (f.streams_exactly, f.streamable)
