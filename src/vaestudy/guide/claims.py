"""The agreement table: each claim of the claims table (``claims.toml``) beside the number this study computes,
with a verdict and its reason. The claims, the figures they quote and what each row's verdict rests on (its evidence
class) live in the table; what counts as "agrees" lives once, in :data:`THRESHOLDS`, and every verdict and reason is
computed from the numbers by the judges below.

Longer than 500 lines because every row of the table is computed here, one block per claim in the table's order,
beside the judges and the one check (:func:`check_row`) that each row's evidence class holds."""

from __future__ import annotations

import itertools
import math

from vaestudy import pipelines as P
from vaestudy.bench import planner
from vaestudy.bench.reference import load_reference
from vaestudy.guide.sources import EVIDENCE, SOURCE_CLAIMS, SOURCE_NAMES, seed_pipeline, seed_shares, source_claim
from vaestudy.guide.study import GROUPNORM_FAMILY, STREAMING_FAMILY, Study
from vaestudy.pipelines.exact_split import METHODS as SPLIT_METHODS
from vaestudy.registry.families import FAMILIES, get_family
from vaestudy.storage import compression as C

VERDICTS = ("agrees", "disagrees", "cannot test here")

# What "agrees" means, stated once; every verdict below reads its threshold from here.
THRESHOLDS: dict[str, float] = {
    "rederived_rel": 0.05,  # a re-derived figure agrees within 5% of the note's (a figure quoted to 2 digits)
    "gpu_factor": 1.25,  # a time or speed-up measured on a GPU agrees within a factor 1.25 of the published one
    "exact_abs": 1e-4,  # max |error| (outputs in [-1, 1]) below which two decodes count as the same decode
    "far_less_share": 0.25,  # "far less memory than X": under a quarter of X
    "majority": 0.5,  # "typical" / "work at": more than half of the registry's families
    "hidden_contention": 0.5,  # overlap hides the decode when the measured contention is below this (0 = hidden)
    "min_repeats": 2,  # "A is slower than B" needs a spread: at least 2 runs of each, ranges apart
    "saving_factor": 2.0,  # "saves only ~x": our saving is at most this many times the note's
    "memory_factor": 2.0,  # a peak-memory figure from another stack agrees within this factor (allocator, workspace)
}
# The same rules in words for readers, each filled in from THRESHOLDS (so the number is stated once).
THRESHOLD_RULES: dict[str, str] = {
    "rederived_rel": "a re-derived figure agrees when within {:.0%} of the note's (its rounding)",
    "gpu_factor": "a time or speed-up on a GPU agrees when within a factor {:g} of the published one",
    "exact_abs": "two decodes are the same decode when their max |error| is below {:.0e} (outputs in [-1, 1])",
    "far_less_share": "'far less memory' holds under {:.0%} of what it is compared with",
    "majority": "'typical' holds for more than {:.0%} of the registry's families",
    "hidden_contention": "overlap hides the decode when the measured contention is below {:g} (0 = fully hidden)",
    "min_repeats": "'slower' needs at least {:g} runs per side, their ranges apart",
    "saving_factor": "'saves only ~x' holds while our saving is at most {:g} times the note's",
    "memory_factor": "a peak memory per pixel-frame from another stack agrees when within a factor {:g} of ours",
}


def threshold_rows() -> list[dict]:
    """Each threshold with its rule in words, for the notebook's table."""
    return [{"threshold": k, "rule": THRESHOLD_RULES[k].format(v)} for k, v in THRESHOLDS.items()]


def _check_verdict(v: str) -> str:
    if v not in VERDICTS:
        raise ValueError(f"verdict={v!r}; valid: {VERDICTS}")
    return v


# ---------------------------------------------------------------------------------------------
# judges: (verdict, reason) from numbers and one threshold each
# ---------------------------------------------------------------------------------------------
def _num(x: float) -> str:
    """Three significant digits, thousands written out (92,160 rather than 9.22e+04)."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def judge_close(value: float, stated: float, *, rel: float | None = None) -> tuple[str, str]:
    """Agrees when ``value`` is within ``rel`` (default ``THRESHOLDS['rederived_rel']``) of ``stated``."""
    rel = THRESHOLDS["rederived_rel"] if rel is None else rel
    r = value / stated
    if abs(r - 1) <= rel:
        return "agrees", f"{_num(value)} is within {rel:.0%} of the stated {_num(stated)}"
    return "disagrees", f"{_num(value)} is {r:.2f}x the stated {_num(stated)}, more than {rel:.0%} off"


def judge_factor(measured: float, published: float, *, factor: float | None = None) -> tuple[str, str]:
    """Agrees when ``measured`` / ``published`` lies within a factor (default ``THRESHOLDS['gpu_factor']``)."""
    f = THRESHOLDS["gpu_factor"] if factor is None else factor
    r = measured / published
    inside = 1 / f <= r <= f
    return ("agrees" if inside else "disagrees",
            (f"{_num(measured)} is {r:.2f}x the published {_num(published)}, {'within' if inside else 'outside'} a "
             f"factor {f:g}"))


def judge_below(value: float, limit: float, *, what: str = "value") -> tuple[str, str]:
    """Agrees when ``value`` < ``limit``."""
    if value < limit:
        return "agrees", f"{what} {_num(value)} < {_num(limit)}"
    return "disagrees", f"{what} {_num(value)} is not below {_num(limit)}"


def judge_in_range(value: float, low: float, high: float, *, what: str = "value") -> tuple[str, str]:
    """Agrees when ``low`` <= ``value`` <= ``high``."""
    if low <= value <= high:
        return "agrees", f"{what} {_num(value)} lies in the stated {_num(low)}-{_num(high)}"
    side = "below" if value < low else "above"
    return "disagrees", f"{what} {_num(value)} lies {side} the stated {_num(low)}-{_num(high)}"


def judge_exact(max_abs: float) -> tuple[str, str]:
    """Agrees (the same decode) when ``max_abs`` < ``THRESHOLDS['exact_abs']``."""
    thr = THRESHOLDS["exact_abs"]
    if max_abs < thr:
        return "agrees", f"max |err| {max_abs:.1e} < {thr:.0e}: the same decode"
    return "disagrees", f"max |err| {max_abs:.1e} >= {thr:.0e}: not the same decode"


def judge_exact_but_not(exact_err: float, other_err: float) -> str:
    """Agrees when the path meant to be exact is the same decode (max |err| ``exact_err``) and the other is not."""
    return "agrees" if judge_exact(exact_err)[0] == "agrees" and judge_exact(other_err)[0] == "disagrees" \
        else "disagrees"


def judge_slower(slow: dict, fast: dict, repeats: int) -> tuple[str, str]:
    """Is ``slow`` slower than ``fast``? Each a ``wall_s`` summary (min, median, max, s) of ``repeats`` runs: agrees
    when their ranges lie apart in that order, disagrees when apart the other way; with fewer than
    ``THRESHOLDS['min_repeats']`` runs or overlapping ranges the spread cannot decide."""
    need = int(THRESHOLDS["min_repeats"])
    ratio = slow["median"] / fast["median"]
    if repeats < need:
        return "cannot test here", f"{repeats} run(s) per side: no spread to judge {ratio:.2f}x by (needs {need})"
    if slow["min"] > fast["max"]:
        return "agrees", (f"{ratio:.2f}x; every run slower ({slow['min']:.3g}-{slow['max']:.3g} s vs "
                          f"{fast['min']:.3g}-{fast['max']:.3g} s)")
    if slow["max"] < fast["min"]:
        return "disagrees", (f"{ratio:.2f}x; every run faster ({slow['min']:.3g}-{slow['max']:.3g} s vs "
                             f"{fast['min']:.3g}-{fast['max']:.3g} s)")
    return "cannot test here", (f"{ratio:.2f}x, but the run ranges overlap ({slow['min']:.3g}-{slow['max']:.3g} s vs "
                                f"{fast['min']:.3g}-{fast['max']:.3g} s)")


def _both(*judged: tuple[str, str]) -> tuple[str, str]:
    """Agrees when every part agrees; the reasons joined."""
    verdicts = {v for v, _ in judged}
    v = "agrees" if verdicts == {"agrees"} else "disagrees" if "disagrees" in verdicts else "cannot test here"
    return v, "; ".join(w for _, w in judged)


# ---------------------------------------------------------------------------------------------
# rows
# ---------------------------------------------------------------------------------------------
def make_row(key: str, found: str, judged: tuple[str, str], *, measured: float | None = None,
             derived: float | None = None, timed: bool = False) -> dict:
    """The row of the claims table named ``key`` with what we found (text), the verdict and its reason, and the
    number the verdict rests on: ``measured`` (measured-here and gpu-reference rows) or ``derived`` (re-derived
    rows); a gpu-reference row names the reference its table row gives. ``timed``: the verdict rests on a wall-clock or RSS reading of this machine (tests compare every other
    verdict exactly). Checked by :func:`check_row`."""
    c = source_claim(key)
    verdict, why = judged
    row = {"key": key, "source": c.source, "source_name": SOURCE_NAMES[c.source], "family": c.family,
           "claim": c.claim, "evidence": c.evidence, "class": EVIDENCE[c.evidence], "found": found,
           "verdict": _check_verdict(verdict), "why": why, "measured": measured, "derived": derived,
           "reference": c.reference, "timed": timed}
    return check_row(row)


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_row(row: dict) -> dict:
    """A row's evidence class holds: re-derived rows carry a derived number and no measurement; measured rows that
    judge carry a measured number; gpu-reference rows name their reference in the row and in its text; not-measured
    rows judge nothing. ValueError naming the row otherwise."""
    ev, v, key = row["evidence"], row["verdict"], row["key"]
    judged = v != "cannot test here"

    def bad(what: str):
        raise ValueError(f"claim {key!r} ({ev}, {v}): {what}")

    if ev not in EVIDENCE:
        bad(f"evidence={ev!r}; valid: {', '.join(EVIDENCE)}")
    if ev == "re-derived":
        if row["measured"] is not None or row["reference"] is not None:
            bad(f"a re-derived row carries no measurement (measured={row['measured']!r}, reference={row['reference']!r})")
        if not _finite(row["derived"]):
            bad(f"derived={row['derived']!r}: a re-derived row carries the number it re-derived")
    elif ev in ("measured-here", "gpu-reference"):
        if row["derived"] is not None:
            bad(f"derived={row['derived']!r}: a measured row's number is its measurement")
        if judged and not _finite(row["measured"]):
            bad(f"measured={row['measured']!r}: a measured row that judges carries a measured number")
        if ev == "gpu-reference" and not (row["reference"] and row["reference"] in row["found"]):
            bad(f"reference={row['reference']!r}: a gpu-reference row names its reference, in the row and its text")
        if ev == "measured-here" and row["reference"] is not None:
            bad(f"reference={row['reference']!r}: measured here, not on a reference")
    elif judged or row["measured"] is not None or row["derived"] is not None:  # not-measured
        bad("a not-measured row carries no number and no verdict")
    return row


def raw_compression(family: str) -> float:
    """Values in / values out of a registry family's VAE (3 channels of pixels vs latent channels)."""
    f = get_family(family)
    return 3 * f.spatial_compression ** 2 * f.temporal_compression / f.latent_channels


def compression_in_range(names=None) -> dict:
    """The claims table's compression range (004) against :func:`raw_compression` of each family (default: every
    registry family): ``low``, ``high``, ``ratios`` by family, the families ``inside``/``below``/``above`` it and the
    ``share`` inside."""
    f = source_claim("compression-range").figures
    ratios = {n: raw_compression(n) for n in (FAMILIES if names is None else names)}
    return {"low": f["low"], "high": f["high"], "ratios": ratios,
            "inside": [n for n, x in ratios.items() if f["low"] <= x <= f["high"]],
            "below": [n for n, x in ratios.items() if x < f["low"]],
            "above": [n for n, x in ratios.items() if x > f["high"]],
            "share": sum(f["low"] <= x <= f["high"] for x in ratios.values()) / len(ratios)}


# The reference records the gpu-reference rows read, by their own labels (anchors.jsonl's part and what), which
# are kept as delivered.
REFERENCE_ANCHORS = {
    "full": ("A", "diffusers decode()"),
    "chunked": ("A", "project chunked k=1 (cache)"),
    "stream": ("B", "streaming decode, 3 latent frames/chunk (12 px frames), cache carried"),
    "stream peak": ("B", "streaming decode peak memory above model"),
}


class _Reference:
    """One reference folder's records, looked up by label, with the words every row that reads them uses."""

    def __init__(self, name: str):
        self.name = name
        self.data = load_reference(name)
        first = self.data["bench"][0]
        self.device = first.get("env", {}).get("device_name") or first["device"]
        self.dtype = first["dtype"]
        self.label = f"{self.device} reference `{self.name}` ({self.dtype}; not this machine)"

    def anchor(self, label: str) -> dict:
        part, what = REFERENCE_ANCHORS[label]
        for r in self.data["anchors"]:
            if r.get("part") == part and r.get("what") == what:
                return r
        raise ValueError(f"reference {self.name!r} has no anchor record part={part!r} what={what!r}")

    def bench(self, model: str, strategy: str) -> dict:
        for r in self.data["bench"]:
            if r["model"] == model and r["strategy"] == strategy:
                return r
        raise ValueError(f"reference {self.name!r} has no bench record model={model!r} strategy={strategy!r}")


def _gpu_rows(st: Study) -> dict[str, dict]:
    """The gpu-reference rows, each computed from the records of the reference its table row names."""
    refs: dict[str, _Reference | None] = {}
    rows: dict[str, dict] = {}

    def reference(key: str) -> _Reference | None:
        name = source_claim(key).reference
        if name not in refs:
            try:
                refs[name] = _Reference(name)
            except ValueError:  # not shipped with this install (the folder lives in the checkout)
                refs[name] = None
        return refs[name]

    def add(key: str, build) -> None:
        ref = reference(key)
        name = source_claim(key).reference
        if ref is None:
            rows[key] = make_row(key, f"reference `{name}` is not in this checkout", ("cannot test here",
                                 f"reference/{name}/ is not shipped with this install"))
        else:
            rows[key] = build(key, ref)

    def fig(key: str) -> dict:
        return source_claim(key).figures

    def cached_stream(key, ref):
        ch, full = ref.anchor("chunked"), ref.anchor("full")
        return make_row(key, f"{ref.label}, {ch['shape']}: chunked decode (one latent frame per call, cache carried) "
                        f"vs diffusers' decode(): max |err| {ch['max_abs_vs_full']:.1e}; first frame after "
                        f"{ch['ttff_s']:.3f} s of the full decode's {full['median_s']:.2f} s, whole video "
                        f"{ch['median_s'] / full['median_s']:.3f}x", judge_exact(ch["max_abs_vs_full"]),
                        measured=ch["max_abs_vs_full"])

    def decode_per_chunk(key, ref):
        seed = seed_pipeline()  # 000's and 001's pipeline figures, from the claims table
        s = ref.anchor("stream")
        h, w = seed["size"]
        claimed = seed["decode_ms_per_chunk"] / 1e3
        sc = planner.seed_comparison(None, st.family_costs.get(source_claim(key).family, {}).get("flops_per_px"), seed)
        work = (f"; by our FLOP count one chunk is {sc['chunk_flops'] / 1e12:.1f} TFLOP, "
                f"{sc['chunk_flops'] / s['steady_median_s'] / 1e12:.0f} TFLOP/s at that time") \
            if sc.get("chunk_flops") else ""
        found = (f"{ref.label}: chunks of {seed['latent_frames_per_chunk']} latent frames at {s['shape']}, cache "
                 f"carried: {s['steady_median_s'] * 1e3:.0f} ms per chunk steady ({s['steady_min_s'] * 1e3:.0f}-"
                 f"{s['steady_max_s'] * 1e3:.0f} ms, {s['chunks']} chunks), first chunk "
                 f"{s['first_chunk_s'] * 1e3:.0f} ms{work}")
        if s["shape"] != f"{h}x{w}":
            return make_row(key, found, ("cannot test here", f"the reference measured {s['shape']}, the claim {h}x{w}"))
        v, why = judge_factor(s["steady_median_s"], claimed)
        return make_row(key, found, (v, f"{why} (seconds); the {seed['decode_share']:.1%} share needs their pipeline"),
                        measured=s["steady_median_s"])

    def vae_only_memory(key, ref):
        gen = fig(key)["generator_bytes"]
        s, pk = ref.anchor("stream"), ref.anchor("stream peak")
        total = s["model_bytes"] + pk["peak_bytes"]
        n = st.family_costs[source_claim(key).family]["parameters"]  # the model the cost rows measured here
        found = (f"{ref.label}: the VAE alone, {s['model_bytes'] / 1e6:.0f} MB ({n / 1e6:.0f} M parameters counted "
                 f"here), plus its streaming decode at {pk['shape']} peaking {pk['peak_bytes'] / 1e9:.2f} GB above "
                 f"it: {total / 1e9:.2f} GB, {total / gen:.1%} of the {gen / 1e9:.0f} GB generator")
        v, why = judge_below(total / gen, THRESHOLDS["far_less_share"], what="share of the generator")
        return make_row(key, found, (v, why), measured=float(total))

    def tiled_slower(key, ref):
        fam = source_claim(key).family
        full, tiled = ref.bench(fam, "full"), ref.bench(fam, "tiled")
        ratio = tiled["wall_s"]["median"] / full["wall_s"]["median"]
        found = (f"{ref.label}: {fam} at {full['frames']}x{full['size'][0]}x{full['size'][1]}, tiled "
                 f"{tiled['wall_s']['median']:.3f} s / full {full['wall_s']['median']:.3f} s = {ratio:.2f}x "
                 f"(medians of {min(full['repeats'], tiled['repeats'])})")
        return make_row(key, found, judge_slower(tiled["wall_s"], full["wall_s"], min(full["repeats"], tiled["repeats"])),
                        measured=ratio)

    def compile_speedup(key, ref):
        lv = ref.data["levers"]
        full = ref.bench(source_claim(key).family, "full")
        sp = lv["eager_s"] / lv["compiled_s"]
        found = (f"{ref.label}: torch.compile(vae.decoder) {lv['compiled_s']:.3f} s after a "
                 f"{lv['compile_first_call_s']:.0f} s first call, eager {lv['eager_s']:.3f} s (the bench's full decode "
                 f"at {full['frames']}x{full['size'][0]}x{full['size'][1]}: {full['wall_s']['median']:.3f} s): "
                 f"{sp:.3f}x, max |diff| {lv['compiled_maxabs']:.3f}")
        f = fig(key)
        if (full["frames"], full["size"][0]) != (f["frames"], f["height"]):
            why = f"the reference measured {full['frames']} frames at {full['size'][0]}p, the claim {f['frames']} at " \
                  f"{f['height']}p"
            return make_row(key, found, ("cannot test here", why))
        return make_row(key, found, judge_factor(sp, f["speedup"]), measured=sp)

    def sglang_baseline(key, ref):
        f = fig(key)
        full, ch = ref.anchor("full"), ref.anchor("chunked")
        found = (f"{ref.label}, {full['shape']}: diffusers' decode() {full['median_s']:.2f} s (runs "
                 f"{full['min_s']:.3f}-{full['max_s']:.3f} s), peak {full['peak_bytes'] / 1e9:.1f} GB above the "
                 f"model; the project's cached stream {ch['median_s']:.2f} s")
        if full["shape"] != f"{f['frames']}x{f['height']}x{f['width']}":
            return make_row(key, found, ("cannot test here", f"the reference measured {full['shape']}"))
        v, why = judge_factor(full["median_s"], f["baseline_s"])
        return make_row(key, found, (v, f"{why} (seconds); their {f['optimised_s']:g} s needs their kernels"),
                        measured=full["median_s"])

    def bytes_per_pixel(key, ref):
        f = fig(key)
        r = ref.bench(source_claim(key).family, "full")
        bpp = r["peak_bytes"] / r["pixel_frames"]
        found = (f"{ref.label}: full decode of {r['frames']}x{r['size'][0]}x{r['size'][1]} peaks "
                 f"{r['peak_bytes'] / 1e9:.2f} GB above the model: {bpp:.0f} B per pixel-frame")
        if (r["frames"], *r["size"]) != (f["frames"], f["height"], f["width"]):
            return make_row(key, found, ("cannot test here", f"the reference measured {r['frames']}x{r['size'][0]}x"
                                         f"{r['size'][1]}, the claim {f['frames']}x{f['height']}x{f['width']}"))
        v, why = judge_factor(r["peak_bytes"], f["peak_gb"] * 1e9, factor=THRESHOLDS["memory_factor"])
        return make_row(key, found, (v, f"{why} (peak bytes, theirs {f['peak_gb']:g} GB; tiled in time they report "
                                        f"{f['tiled_peak_gb']:g} GB)"), measured=bpp)

    for key, build in (("cached-stream-gpu", cached_stream), ("decode-per-chunk", decode_per_chunk),
                       ("vae-only-memory", vae_only_memory), ("tiled-slower-gpu", tiled_slower),
                       ("compile-speedup", compile_speedup), ("sglang-baseline", sglang_baseline),
                       ("decode-bytes-per-pixel-gpu", bytes_per_pixel)):
        add(key, build)
    return rows


def claims(st: Study) -> list[dict]:
    """One row per claim of the claims table, in its order, with what we found, a verdict and its reason."""

    def fig(key: str) -> dict:  # the figures the table's claim states
        return source_claim(key).figures

    def fam(key: str) -> str | None:  # the registry family the claim concerns
        return source_claim(key).family

    s_fam, g_fam = STREAMING_FAMILY, GROUPNORM_FAMILY
    gpu = _gpu_rows(st)
    rows = []
    # --- 000: the topic page
    f = fig("typical-compression")
    typical = [n for n, fa in FAMILIES.items() if (fa.temporal_compression, fa.spatial_compression)
               == (f["temporal"], f["spatial"])]
    share = len(typical) / len(FAMILIES)
    v = "agrees" if share > THRESHOLDS["majority"] else "disagrees"
    rows.append(make_row("typical-compression",
                         f"{len(typical)} of {len(FAMILIES)} registry families ({', '.join(typical)}); others: "
                         + ", ".join(f"{n} {fa.temporal_compression}x{fa.spatial_compression}x{fa.spatial_compression}"
                                     for n, fa in FAMILIES.items() if n not in typical),
                         (v, (f"{share:.0%} of the diffusers configs, {'more' if v == 'agrees' else 'not more'} than "
                              f"{THRESHOLDS['majority']:.0%}")), derived=share))
    cd = st.cache_demo
    _, why_cache = judge_exact(cd["cache_max"])
    gn = [r["max_abs"] for r in st.norms if r["family"] == g_fam and r["what"].startswith("chunks")
          and r["setting"] == "own norm"]
    gn_text = (f"; {g_fam}'s cached chunks (GroupNorm): max |err| {gn[0]:.1e}, "
               f"{'the same decode too' if judge_exact(gn[0])[0] == 'agrees' else 'not the same decode'}") if gn else ""
    rows.append(make_row("cached-stream",
                         f"{s_fam}-class stream vs full decode: max |err| {cd['cache_max']:.1e}; same chunks without the "
                         f"cache {cd['naive_max']:.2f}; first frame after {cd['cache_first_s'] / cd['full_s']:.2f} of "
                         f"the full decode's time",
                         (judge_exact_but_not(cd["cache_max"], cd["naive_max"]),
                          f"with the cache {why_cache}; without it {cd['naive_max']:.2f}{gn_text}"),
                         measured=cd["cache_max"]))
    rows.append(gpu["cached-stream-gpu"])
    rows.append(gpu["decode-per-chunk"])
    seed, shares = seed_pipeline(), seed_shares()  # 000's pipeline figures, from the claims table
    lo = P.scope_ceiling(**shares, critical=1.0)["gain"]
    hi = P.scope_ceiling(**shares, critical=0.0)["gain"]
    claimed = seed["overlap_ceiling"]
    inside = lo <= claimed[0] and claimed[1] <= hi
    at = [critical_share_for_gain(g, **shares) for g in claimed]
    rows.append(make_row("overlap-ceiling",
                         f"overlap model with 000's shares (decode {seed['decode_share']:.1%}, decode+recompute "
                         f"{seed['decode_plus_recompute_share']:.0%}): {hi:.1%} if nothing waits on the decode, "
                         f"{lo:.1%} if the next chunk waits for all of it; {claimed[1]:.0%} and {claimed[0]:.0%} when "
                         f"it waits for {at[1]:.0%} and {at[0]:.0%} of it",
                         ("agrees" if inside else "disagrees",
                          f"their {claimed[0]:.0%}-{claimed[1]:.0%} lies {'inside' if inside else 'outside'} the model's "
                          f"{lo:.1%}-{hi:.1%}" + (f", the next chunk waiting for {at[1]:.0%}-{at[0]:.0%} of each decode"
                                                  if inside else "")), derived=hi))
    rows.append(make_row("stream-vae-share", "-", ("cannot test here", "needs their pipeline and GPU")))
    # --- 001: rank-0 decode design
    om = st.overlap_measured
    hidden = om["contention"] < THRESHOLDS["hidden_contention"]
    if om["gain"] > om["bound_gain"]:  # more than the model's ideal: the timings, not the overlap, moved
        judged = ("cannot test here", (f"the measured gain {om['gain']:.1%} exceeds the ideal {om['bound_gain']:.1%}: "
                                       "run-to-run noise, not a reading of the hiding"))
    else:
        judged = ("agrees" if hidden else "cannot test here",
                  f"contention {om['contention']:.2f} {'<' if hidden else '>='} {THRESHOLDS['hidden_contention']:g}: "
                  + ("hidden on this machine too" if hidden else
                     "both sides share one device's compute, so this run cannot show the hiding"))
    rows.append(make_row("overlap-hides-decode",
                         f"model: overlapped period = max(decode, step) when nothing waits on the decode; measured on "
                         f"this {st.device} (generator stand-in and decode share it): contention {om['contention']:.2f} "
                         f"(0 = fully hidden), gain {om['gain']:.1%} of an ideal {om['bound_gain']:.1%}", judged,
                         measured=om["contention"], timed=True))
    rows.append(gpu["vae-only-memory"])
    # --- 002: latents vs MP4
    f = fig("storage-ratio")
    r = C.storage_ratio(spatial=f["spatial"], channels=f["channels"], bits_per_pixel=f["bits_per_pixel"])
    rows.append(make_row("storage-ratio", f"R = {r:.3f}", judge_close(r, f["ratio"]), derived=r))
    f = fig("compression-vs-raw")
    latent_x, h264_x = C.compression_vs_raw(f["spatial"], f["channels"]), C.h264_compression_vs_raw(f["bits_per_pixel"])
    rows.append(make_row("compression-vs-raw", f"{latent_x:.0f}x and {h264_x:.0f}x",
                         _both(judge_close(latent_x, f["latent_vs_raw"]), judge_close(h264_x, f["h264_vs_raw"])),
                         derived=latent_x))
    f = fig("cosmos-vs-raw")
    cos = C.compression_vs_raw(f["spatial"], f["channels"], "fp16", t=f["temporal"])
    cos_r = C.storage_ratio(spatial=f["spatial"], channels=f["channels"], bits_per_pixel=f["bits_per_pixel"],
                            temporal=f["temporal"])
    rows.append(make_row("cosmos-vs-raw", f"the note's own formula gives {cos:.0f}x and R = {cos_r:.2f}",
                         _both(judge_close(cos, f["vs_raw"]), judge_close(cos_r, f["ratio"])), derived=cos))
    b = st.bpp
    falls = all(x["bpp"] > y["bpp"] for x, y in itertools.pairwise(b))
    rows.append(make_row("h264-bpp-falls", "bikes, CRF 23: " + ", ".join(f"{x['height']}p {x['bpp']:.3f}" for x in b)
                         + " bpp", ("agrees" if falls else "disagrees",
                                    (f"libx264 through PyAV: {b[-1]['bpp'] / b[0]['bpp']:.2f}x from {b[0]['height']}p to "
                                     f"{b[-1]['height']}p, {'falling' if falls else 'not falling'} at every step")),
                         measured=b[-1]["bpp"] / b[0]["bpp"]))
    f = fig("temporal-threshold-720p")
    t720 = C.min_temporal_compression(f["spatial"], f["channels"], f["bits_per_pixel"])
    rows.append(make_row("temporal-threshold-720p", f"t > {t720:.2f}", judge_close(t720, f["min_temporal"]),
                         derived=t720))
    zs = next(p for p in st.latent_pack if p.method == "zstd")
    saving = 1 - zs.nbytes / zs.raw_nbytes
    v, why = judge_below(saving, THRESHOLDS["saving_factor"] * fig("zstd-saving")["saving"], what="saving")
    rows.append(make_row("zstd-saving", f"zstd on our {s_fam}-class latent of a real clip: {zs.nbytes / zs.raw_nbytes:.1%} "
                         f"of raw", (v, (f"{why} ({THRESHOLDS['saving_factor']:g}x the note's); a small latent, the "
                                         f"note's are DC-AE latents of game footage")), measured=saving))
    # --- 003: two devices
    f = fig("window-fill")
    fill = C.window_fill_time_s(f["frames"], f["fps"])
    first = fill + f["encode_s"] + f["decode_s"]
    rows.append(make_row("window-fill", f"fill {fill:.2f} s; with {f['encode_s']:.2f} s encode + {f['decode_s']:.2f} s "
                         f"decode: {first:.2f} s",
                         _both(judge_close(fill, f["fill_s"]),
                               judge_in_range(first, *f["first_frame_s"], what="first frame (s)")), derived=fill))
    f = fig("encode-bound-fps")
    tp = C.pipeline_throughput_fps(f["frames"], [f["encode_s"], f["decode_s"]])
    rows.append(make_row("encode-bound-fps", f"{tp:.1f} fps", judge_close(tp, f["fps"]), derived=tp))
    f = fig("window-latent-bytes")
    t_lat = 5  # T' for a 17-frame window at 4x temporal compression: 1 + 16 / 4
    wb = C.window_bytes_continuous((f["batch"], f["channels"], t_lat, f["height"], f["width"]), "fp32")
    rows.append(make_row("window-latent-bytes", f"{wb / 1e3:.0f} KB at T' = {t_lat}, fp32", judge_close(wb, f["bytes"]),
                         derived=wb))
    # --- 004: reference
    fa = get_family(fam("family-compression"))
    claimed = fig("family-compression")["compression"]
    ratio = raw_compression(fa.name)
    s, t, ch = fa.spatial_compression, fa.temporal_compression, fa.latent_channels
    v, why = judge_close(ratio, claimed)
    if v == "disagrees":  # the latent channel count that would give the stated figure
        why += f"; {claimed} is what {3 * s * s * t / claimed:.3g} latent channels would give, not {ch}"
    rows.append(make_row("family-compression", f"3*{s}*{s}*{t}/{ch} = {ratio:.0f}x values in per value out", (v, why),
                         derived=ratio))
    cr = compression_in_range()
    ratios, inrange, share = cr["ratios"], cr["inside"], cr["share"]
    v = "agrees" if share > THRESHOLDS["majority"] else "disagrees"
    rows.append(make_row("compression-range", ", ".join(f"{n} {x:.0f}x" for n, x in ratios.items()),
                         (v, (f"by value count, fp32 vs fp32: {len(inrange)} of {len(ratios)} families in range, "
                              f"{'more' if v == 'agrees' else 'not more'} than {THRESHOLDS['majority']:.0%}")),
                         derived=share))
    fl = {r_["strategy"]: r_ for r_ in st.flicker}
    hf_naive, hf_cache = fl["chunked-naive"]["hf_share"], fl["chunked"]["hf_share"]
    more = hf_naive > hf_cache
    rows.append(make_row("flicker-frequency", f"share above {fig('flicker-frequency')['hz']} Hz (25 fps): naive chunks "
                         f"{hf_naive:.3f} vs cached stream {hf_cache:.3f}",
                         ("agrees" if more else "disagrees",
                          (f"the flickering decode has {'more' if more else 'no more'} energy there "
                           f"({hf_naive / hf_cache:.2f}x)")), measured=hf_naive / hf_cache))
    src_ssim = fl["source clip"]["adjacent_ssim_mean"]
    low = fig("adjacent-ssim")["low"]
    ok = src_ssim >= low
    rows.append(make_row("adjacent-ssim", f"the real source clip itself: {src_ssim:.3f}",
                         ("agrees" if ok else "disagrees",
                          f"{src_ssim:.3f} {'>=' if ok else '<'} {low:g}" +
                          ("" if ok else ": motion lowers adjacent SSIM without any flicker")), measured=src_ssim))
    px, lat = fl["chunked-window (pixel grid)"], fl["chunked-window (latent grid)"]
    better = lat["spike_ratio"] < px["spike_ratio"]
    rows.append(make_row("latent-blending", f"decode windows, spike ratio (lower is better): pixel grid "
                         f"{px['spike_ratio']:.2f}, latent grid {lat['spike_ratio']:.2f}",
                         ("agrees" if better else "disagrees",
                          (f"latent blending {'lower' if better else 'not lower'}; tested on decode windows, not on "
                           f"generation chunks")), measured=lat["spike_ratio"] / px["spike_ratio"]))
    rows.append(make_row("generation-share", "-", ("cannot test here",
                         "no generator; the share depends on step count (see the overlap concept)")))
    # --- public anchors
    tf = fam("tiled-slower")
    w_full, w_tiled = st.cost(tf, "full"), st.cost(tf, "tiled")
    tr = w_tiled["wall_s"]["median"] / w_full["wall_s"]["median"]
    rows.append(make_row("tiled-slower", f"{tf} tiled / full latency {tr:.2f}x ({st.repeats} run(s) each at "
                         f"{st.cost_size[0]}x{st.cost_size[1]}, {st.device}, random weights)",
                         judge_slower(w_tiled["wall_s"], w_full["wall_s"], st.repeats), measured=tr, timed=True))
    rows.append(gpu["tiled-slower-gpu"])
    rows.append(gpu["compile-speedup"])
    rows.append(gpu["sglang-baseline"])
    hs = st.halo_split
    rf = st.receptive["rf"]
    halo = fig("halo-split")["halo"]
    radius = rf["radii"][0.99]
    rows.append(make_row("halo-split", f"99% radius {radius} latent px (trained {s_fam}-class, "
                         f"{rf['latent_size'][1]}x{rf['latent_size'][2]} probe); halo {halo}, crop: "
                         f"{hs[halo]['psnr_db']:.1f} dB vs full, halo {hs['halos'][1]}: "
                         f"{hs[hs['halos'][1]]['psnr_db']:.1f} dB",
                         ("agrees" if radius > halo else "disagrees",
                          f"radius {radius} {'>' if radius > halo else '<='} halo {halo}"), measured=float(radius)))
    es = st.exact_split
    ex, crop = (next(r for r in es["rows"] if r["method"] == m) for m in SPLIT_METHODS)
    _, why_ex = judge_exact(ex["max_abs"])
    v_crop, _ = judge_exact(crop["max_abs"])
    sent = sum(ex["bytes_measured"].values())
    rows.append(make_row("multi-device-exactness",
                         f"{es['model']} latent {'x'.join(map(str, es['latent_shape'][2:]))} split by rows over "
                         f"{es['world']} gloo ranks: halo exchange before every convolution, max |err| "
                         f"{ex['max_abs']:.1e} vs one process ({sent / 1e3:.0f} kB exchanged); halo-and-crop (halo "
                         f"{es['config']['crop_halo']}) {crop['max_abs']:.2f}",
                         (judge_exact_but_not(ex["max_abs"], crop["max_abs"]),
                          f"exchange: {why_ex}; crop: {'not ' if v_crop == 'disagrees' else ''}the same decode"),
                         measured=ex["max_abs"]))
    nv, chs, src = fl["chunked-naive"]["spike_ratio"], fl["chunked"]["spike_ratio"], fl["source clip"]["spike_ratio"]
    f = fig("boundary-jump")
    lo_r, hi_r = f["boundary"][0] / f["elsewhere"][1], f["boundary"][1] / f["elsewhere"][0]  # the thread's jump ratio
    v, why = judge_in_range(nv, lo_r, hi_r, what="naive spike ratio")
    rows.append(make_row("boundary-jump", f"spike ratio (boundary / elsewhere): naive chunks {nv:.1f} (their {lo_r:.1f}-"
                         f"{hi_r:.1f}); cached stream = full decode {chs:.1f}; source clip {src:.1f}",
                         (v, why + (f"; the model's own full decode already jumps {chs:.1f}x at those frames"
                                    if chs > src else "")), measured=nv))
    lb = st.decode_bytes_per_px
    bpp = lb["bytes_per_pixel_frame"]
    half = bpp / 2 if lb["dtype"] == "float32" else bpp
    f = fig("decode-bytes-per-pixel")
    claimed_bpp = f["peak_gb"] * 1e9 / (f["frames"] * f["height"] * f["width"])
    v, why = judge_factor(half, claimed_bpp, factor=THRESHOLDS["memory_factor"])
    why = f"{why} (bytes per pixel-frame at 2 bytes per value; theirs {claimed_bpp:.0f} B)"
    rows.append(make_row("decode-bytes-per-pixel", f"{lb['family']}: marginal peak {bpp:.0f} B per pixel-frame in "
                         f"{lb['dtype']} (~{half:.0f} B at 2 bytes per value)",
                         (v, f"{why}; peak RSS slope between two sizes on this {st.device}"), measured=half, timed=True))
    rows.append(gpu["decode-bytes-per-pixel-gpu"])
    rows.append(make_row("tiny-decoder", "-", ("cannot test here", "TAEHV weights are not available offline")))
    if [r["key"] for r in rows] != list(SOURCE_CLAIMS):  # the table's order is the notebook's order
        raise RuntimeError(f"claims() computed {[r['key'] for r in rows]}, the claims table holds {list(SOURCE_CLAIMS)}")
    return rows


def critical_share_for_gain(gain: float, *, decode_share: float, decode_plus_recompute: float) -> float:
    """The share of the decode the next chunk must wait for at which the overlap model (with these shares of a
    chunk's time) gives ``gain`` (bisection; the gain falls as that share grows). Clipped to [0, 1] outside the
    model's range."""
    shares = {"decode_share": decode_share, "decode_plus_recompute": decode_plus_recompute}
    lo, hi = 0.0, 1.0
    if P.scope_ceiling(critical=0.0, **shares)["gain"] <= gain:
        return 0.0
    if P.scope_ceiling(critical=1.0, **shares)["gain"] >= gain:
        return 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if P.scope_ceiling(critical=mid, **shares)["gain"] > gain else (lo, mid)
    return (lo + hi) / 2


def reference_provenance(rows: list[dict]) -> list[dict]:
    """One line per reference the rows read: its device, dtype, software and date from its own records, and the
    README that gives the rest of its provenance. Empty when no row read one."""
    out = []
    for name in dict.fromkeys(r["reference"] for r in rows if r["reference"]):
        try:
            ref = _Reference(name)
        except ValueError:
            continue
        env = ref.data["bench"][0].get("env", {})
        dates = sorted(r["timestamp"][:10] for r in ref.data["bench"] if r.get("timestamp"))
        out.append({"reference": f"reference/{name}/", "device": ref.device, "dtype": ref.dtype,
                    "torch": env.get("torch", "?"), "diffusers": env.get("diffusers", "?"),
                    "measured on": dates[0] if dates else "?", "rows": sum(r["reference"] == name for r in rows),
                    "provenance": f"reference/{name}/{ref.data['readme'].name}"})
    return out


def verdict_counts(rows: list[dict], by: str | None = None) -> dict:
    """Rows per verdict; with ``by="evidence"``, per evidence class (every class of EVIDENCE, in order) and verdict."""
    if by is None:
        return {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    if by != "evidence":
        raise ValueError(f"by={by!r}; valid: None, 'evidence'")
    return {e: verdict_counts([r for r in rows if r["evidence"] == e]) for e in EVIDENCE}


def verdict_table(rows: list[dict]) -> list[dict]:
    """One row per evidence class (its label) with the count of each verdict and the total, plus a total row."""
    out = [{"class": EVIDENCE[e], **c, "rows": sum(c.values())} for e, c in verdict_counts(rows, "evidence").items()]
    return out + [{"class": "all", **verdict_counts(rows), "rows": len(rows)}]
