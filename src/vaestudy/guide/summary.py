"""The guide's closing pages: checklist, experiments to run, and the index's headline per notebook."""

from __future__ import annotations

import math
import shlex

from vaestudy import pipelines as P
from vaestudy.bench import planner
from vaestudy.decode import decode_chunked, decode_full, decode_tiled
from vaestudy.decode.streams import window_context
from vaestudy.decode.tiled import TilePlan
from vaestudy.guide.atlas import static_row
from vaestudy.guide.claims import THRESHOLDS, judge_close, judge_exact
from vaestudy.guide.quality import clip_latent, load_model
from vaestudy.guide.sources import EVIDENCE, SOURCE_CLAIMS, SOURCES, seed_pipeline, seed_shares, source_claim
from vaestudy.guide.study import (
    COST_FAMILIES,
    GROUPNORM_FAMILY,
    STREAMING_FAMILY,
    Study,
    _bikes_rgb,
    _latent,
    strategy_costs,
)
from vaestudy.measure import metrics as M
from vaestudy.registry.cost import build_on_meta
from vaestudy.registry.families import DEFAULT_FAMILY, FAMILIES, get_family
from vaestudy.registry.load import load_vae
from vaestudy.storage import codec
from vaestudy.storage import compression as C
from vaestudy.tables import format_table


# ---------------------------------------------------------------------------------------------
# checklist and experiments
# ---------------------------------------------------------------------------------------------
def checklist(st: Study, family: str = DEFAULT_FAMILY, budget_share: float = 0.6) -> list[dict]:
    """What to pick for each goal, from this run's measurements of one family, plus the planner's pick."""

    recs = [r for r in st.strategy_costs if r["model"] == family]
    cd = st.cache_demo
    # the cache demo runs on the study's exact-streaming family: it speaks for ``family`` only if that streams exactly too
    fam = get_family(family)
    stream_exact = fam.streams_exactly and judge_exact(cd["cache_max"])[0] == "agrees"
    exact = {"full", "chunked"} if stream_exact else {"full"}
    by = lambda key: min(recs, key=key)
    fast = by(lambda r: r["wall_s"]["median"])
    small = by(lambda r: r["peak_bytes"] or math.inf)
    first = by(lambda r: r["first_frame_s"]["median"])
    clean = min((r for r in recs if r["strategy"] in exact), key=lambda r: r["wall_s"]["median"])
    full = next(r for r in recs if r["strategy"] == "full")
    out = [
        {"goal": "lowest latency", "choose": fast["strategy"],
         "evidence": f"{fast['wall_s']['median']:.3f} s median ({fast['wall_s']['median'] / full['wall_s']['median']:.2f}x full)"},
        {"goal": "lowest memory", "choose": small["strategy"],
         "evidence": f"peak {small['peak_bytes'] / 2**20:.0f} MiB ({small['peak_bytes'] / full['peak_bytes']:.2f}x full)"},
        {"goal": "first frame fastest", "choose": first["strategy"],
         "evidence": f"first frame after {first['first_frame_s']['median']:.3f} s "
                     f"({first['first_frame_s']['median'] / full['wall_s']['median']:.2f}x the full decode)"},
        {"goal": "no seams, no flicker", "choose": clean["strategy"],
         "evidence": (f"the stream equals the full decode (max |err| {cd['cache_max']:.1e} < "
                      f"{THRESHOLDS['exact_abs']:.0e}); " if stream_exact else
                      f"the full decode itself: {family}'s chunks are not its full decode "
                      f"({'its cache does not make them exact' if fam.streamable else 'it has no cache to carry'}); ")
                     + f"{clean['wall_s']['median']:.3f} s"},
    ]
    try:
        cm = planner.fit_cost_model(recs + [r for r in st.memory_sweep if r["model"] == family], family,
                                    weights=st.cost_weights)
        budget = int(cm.model_bytes + budget_share * full["peak_bytes"])
        frames = max(st.sweep_frames)
        res = planner.plan(cm, frames, st.cost_size, budget)
        pick = planner.describe(res["best"]) if res["best"] else "nothing fits"
        warned = "; ".join(f"extrapolated: {w}" for w in res["warnings"])
        out.append({"goal": f"fastest within {budget / 2**20:.0f} MiB (weights + {budget_share:.0%} of full's "
                            f"peak), {frames} frames", "choose": pick,
                    "evidence": "planner fit on this run's records" + (f" ({warned})" if warned else "")})
    except ValueError as exc:
        out.append({"goal": "planner under a memory budget", "choose": "-", "evidence": f"planner could not fit: {exc}"})
    return out


def measured_stand_in(family: str) -> str:
    """The family whose measured rows stand in for ``family`` in the checklist: itself where the study measures it,
    else the measured family that streams the same way (exactly with its cache, with a cache but not exactly, or
    without a cache)."""
    if family in COST_FAMILIES:
        return family
    f = get_family(family)
    if f.streams_exactly:
        return STREAMING_FAMILY
    if f.streamable:
        return GROUPNORM_FAMILY
    return COST_FAMILIES[-1]


def _not_exact_why(f) -> str:
    if f.stream_caveat:
        return f.stream_caveat
    return (f"its {f.norm} normalisation pools statistics over the frames of one call, so a chunk's statistics are "
            "not the whole clip's")


def rules_checklist(family: str) -> list[dict]:
    """What to choose for ``family``, read from its registry rules alone (no measurement): how to stream it, how to
    tile it, which frame counts to ask for and what its own decode() does. Rows of goal / choose / why."""
    f = get_family(family)
    if f.streams_exactly:
        stream = ("chunked, carrying its cache",
                  (f"the decoder's `{f.cache}` cache carried between chunks is the full decode's arithmetic (exact); "
                  f"chunks of at least {f.default_chunk} latent frame(s)"))
    elif f.streamable:
        stream = ("full decode where exactness matters; chunked (cache carried) otherwise, inexact",
                  f"it carries a `{f.cache}` cache, but chunks are not exact: {_not_exact_why(f)}")
    else:  # no cache: chunked-window applies to every such family (on a frame grid, whole clips on the grid)
        stream = ("full decode; overlapping windows (chunked-window) only to stream, inexact",
                  (f"no cache to carry; windows overlap by {window_context(f)} latent frame(s) and are blended, which "
                  "is never the full decode" + ("" if f.causal_frames else
                                                 f"; every window is a whole clip on its {f.frame_rule_text} frame grid")))
    tiling = {
        "off": ("our tiled decode (or diffusers' enable_tiling)",
                "its decode() is untiled unless tiling is enabled; tiles need overlap and still leave seams"),
        "default": ("its own decode(), which tiles by default",
                    "the released model decodes with diffusers' spatial tiling on; our tiled plan is the alternative"),
        "only": ("its own decode(): 3-D tiles are its only path",
                 "decode() has no untiled path; sizes must sit on its own tile grid"),
    }[f.decode_tiling]
    return [
        {"goal": "stream frames as they decode", "choose": stream[0], "why": stream[1]},
        {"goal": "fit a large video in memory", "choose": tiling[0], "why": tiling[1]},
        {"goal": "valid frame counts", "choose": f"{f.frame_rule_text} pixel frames",
         "why": f"latent frames {f.frame_rule[0]} + {f.frame_rule[1]}k (e.g. "
                f"{', '.join(map(str, f.valid_frame_counts(f.frame_rule[2] + 3 * f.frame_rule[3])))})"},
        {"goal": "know what decode() does", "choose": f.diffusers_class, "why": f.decode_notes},
    ]


# Commands for the default family; the streaming ones for the family whose stream is exact, the GroupNorm one for
# the family whose chunks it changes (the registry picks both).
EXPERIMENTS = [
    ("the whole suite on real weights",
     f"vaestudy report --model {DEFAULT_FAMILY} --weights pretrained --device cuda --full",
     f"every page with the real {DEFAULT_FAMILY} VAE; compare seam and flicker numbers with the embedded model's"),
    ("latency, first frame and memory at production sizes",
     (f"vaestudy bench --model {STREAMING_FAMILY} --weights pretrained --device cuda --dtype bfloat16 --frames 17,33,81 "
     "--size 480x832 --strategies full,tiled,chunked,tiled+chunked --interleave --repeats 5"),
     ("chunked throughput vs full, time to first frame, flat streamed peak "
     f"(000's {seed_pipeline()['decode_ms_per_chunk']:.0f} ms/chunk claim)")),
    ("what fits a 24 GiB card", (f"vaestudy plan --model {DEFAULT_FAMILY} --frames 81 --size 720x1280 "
     "--memory-budget 24GiB --device cuda --dtype bfloat16"), "the planner's pick, then measure it with bench"),
    ("receptive field of the real decoder", (f"vaestudy probe --model {DEFAULT_FAMILY} --weights pretrained "
     "--device cuda --latent 3 32 32 --tiles 2"),
     f"radius and the overlap a seamless tiling needs (LightX2V's halo of {source_claim('halo-split').figures['halo']})"),
    (f"GroupNorm across chunks on the real {GROUPNORM_FAMILY}", (f"vaestudy decode-check --model {GROUPNORM_FAMILY} "
     "--weights pretrained --device cuda --frames 49 --size 480x720"),
     "chunked vs full error with trained GroupNorm statistics"),
    ("decode overlapped with generation on two GPUs", "vaestudy stream overlap --device cuda --shares 0.2,0.5,0.8",
     "the overlap gain with separate compute, against 000's "
     "{:.0%}-{:.0%} ceiling".format(*seed_pipeline()["overlap_ceiling"])),
]


def experiments(parser=None) -> list[dict]:
    """Ready-to-run parameter sets for a GPU box; with ``parser`` (``vaestudy.cli.build_parser()``) every
    command is parsed by the real CLI parser first (the guide sits below the CLI, so it is handed in)."""
    rows = []
    for goal, cmd, look in EXPERIMENTS:
        argv = shlex.split(cmd)[1:]
        if parser is not None:
            try:
                parser.parse_args(argv)
            except SystemExit as exc:  # argparse exits on bad arguments
                raise ValueError(f"experiment {goal!r}: {cmd!r} does not parse") from exc
        rows.append({"goal": goal, "command": cmd, "look for": look})
    return rows


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------
def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Rows as a Markdown table (the one formatter, :func:`vaestudy.tables.format_table`); values as given."""
    return format_table(rows, columns, digits=None, markdown=True)


# ---------------------------------------------------------------------------------------------
# the index: one headline result per notebook
# ---------------------------------------------------------------------------------------------
def headlines(*, fast: bool = True, device: str = "cpu", seed: int = 0, weights: str = "embedded") -> list[dict]:
    """One result per notebook, each recomputed here at small size (seconds), for the index's table of contents."""

    out = []
    # 01: exactness of the stream, the cost of dropping the cache (a tiny random model: exactness is structural)
    stream = STREAMING_FAMILY  # exactness and seams/flicker with and without the cache need a family with one
    tiny = load_vae(stream, "tiny", device=device, seed=seed)
    z = _latent(tiny, 9, (32, 32), seed)
    full = decode_full(tiny, z).video
    err = lambda mode: float((decode_chunked(tiny, z, 1, mode=mode).video - full).abs().max())
    cache_err = err("cache")
    same = "equals" if judge_exact(cache_err)[0] == "agrees" else "differs from"
    out.append({"notebook": "01_decode_strategies",
                "headline": f"tiny random config: streaming with the cache {same} the full decode (max |err| "
                            f"{cache_err:.1e}); without it chunks are off by {err('naive'):.2f}"})
    # 02 / 03: seams and flicker need trained weights
    vae, used, _ = load_model(stream, weights, seed=seed, device=device)
    video, zc = clip_latent(vae, "bikes", 17, (48, 64), scale=0.5)
    ref = decode_full(vae, zc).video
    plan = TilePlan.for_count(tuple(zc.shape[-2:]), 2, 0)
    tiled = decode_tiled(vae, zc, plan.tile, 0, "linear")
    sb = M.seam_band_psnr(ref, tiled.video, tiled.extra["seams_y"], tiled.extra["seams_x"], 4.0)
    out.append({"notebook": "02_tiling_and_seams",
                "headline": f"2x2 tiles without overlap ({used} weights): {sb['seam_db']:.1f} dB next to the seams vs "
                            f"{sb['interior_db']:.1f} dB inside the tiles"})
    cached, naive = decode_chunked(vae, zc, 1, mode="cache"), decode_chunked(vae, zc, 1, mode="naive")
    bounds = [b for b in M.chunk_boundaries(cached.chunk_frames) if b > 1]
    spike = lambda v: M.boundary_spike_ratio(M.frame_differences(v), bounds)["ratio"]
    out.append({"notebook": "03_temporal_chunking_and_flicker",
                "headline": f"{used} weights: frame-difference spike at chunk boundaries: {spike(naive.video):.1f}x without the cache, "
                            f"{spike(cached.video):.1f}x with it (full decode {spike(ref):.1f}x, source "
                            f"{spike(video[None]):.1f}x)"})
    # 04: time to first frame on the full-size config (cost does not depend on weight values)
    recs = {r["strategy"]: r for r in strategy_costs(stream, 9, (32, 32), repeats=1, device=device, seed=seed)
            if r["strategy"] in ("full", "chunked")}
    out.append({"notebook": "04_latency_and_memory",
                "headline": f"{stream} (full size, random weights, 9x32x32 on {device}): the stream's first frame after "
                            f"{recs['chunked']['first_frame_s']['median'] / recs['full']['wall_s']['median']:.2f}x the "
                            f"full decode's latency, whole video in "
                            f"{recs['chunked']['wall_s']['median'] / recs['full']['wall_s']['median']:.2f}x"})
    # 05: storage ratio with a measured H.264 rate

    b = codec.encode_h264(_bikes_rgb(), crf=23)["bpp"]
    out.append({"notebook": "05_compression_and_storage",
                "headline": f"fp16 {DEFAULT_FAMILY} latents are {C.codec_storage_ratio(DEFAULT_FAMILY, b):.1f}x the size "
                            f"of the same clip in H.264 (bikes 272x640, CRF 23, b = {b:.3f} bit/px)"})
    shares = seed_shares()
    lo, hi = P.scope_ceiling(**shares, critical=1.0)["gain"], P.scope_ceiling(**shares, critical=0.0)["gain"]
    out.append({"notebook": "06_pipelines_and_multi_device",
                "headline": f"with 000's shares (decode {shares['decode_share']:.1%}, +recompute "
                            f"{shares['decode_plus_recompute']:.0%}) overlapping decode gains "
                            f"{lo:.1%}-{hi:.1%}, depending on how much of it the next chunk waits for"})
    f = source_claim("cosmos-vs-raw").figures
    cos = C.compression_vs_raw(f["spatial"], f["channels"], "fp16", t=f["temporal"])
    agrees = judge_close(cos, f["vs_raw"])[0] == "agrees"
    per_class = ", ".join(f"{sum(c.evidence == e for c in SOURCE_CLAIMS.values())} {label}" for e, label in EVIDENCE.items())
    out.append({"notebook": "07_study_guide",
                "headline": f"{sum(k != 'anchors' for k in SOURCES)} source notes and the public anchors checked claim by "
                            f"claim ({len(SOURCE_CLAIMS)} rows: {per_class}); e.g. 002's Cosmos row: its own formula "
                            f"gives {cos:.0f}x, " + ("as stated" if agrees else f"not the stated {f['vs_raw']}x")})
    # 08: what an exact split exchanges at a production size, from shapes alone (the released config on meta)
    fam = get_family(stream)
    frames, h, w = (61, 704, 1280)  # sglang's split shape (FINDINGS.md), in the family's frame and size rules
    sent = P.exchange_bytes(build_on_meta(fam, "full"), (1, *fam.latent_shape(frames, h, w)), 2)["total"]
    out.append({"notebook": "08_speed_levers_and_split_decode",
                "headline": f"an exact 2-rank split of {stream} at {frames}x{h}x{w} (halos exchanged before every "
                            f"convolution) hands {sum(sent.values()) / 1e9:.2f} GB to the exchange per decode, "
                            f"{sent['halo'] / 1e9:.2f} GB of it halo rows (counted from shapes)"})
    # 09: the registry's families side by side (counted on the released configs)
    rows = [static_row(f) for f in FAMILIES.values()]
    cost = [r for r in rows if r["mflops_per_px"] is not None]
    lo, hi = min(cost, key=lambda r: r["mflops_per_px"]), max(cost, key=lambda r: r["mflops_per_px"])
    out.append({"notebook": "09_family_atlas",
                "headline": f"{len(rows)} diffusers video VAE families: decode arithmetic from "
                            f"{lo['mflops_per_px']:.2f} ({lo['family']}) to {hi['mflops_per_px']:.1f} MFLOP "
                            f"({hi['family']}) per output pixel-frame, {sum(f.streamable for f in FAMILIES.values())} "
                            "stream with their own cache"})
    return out
