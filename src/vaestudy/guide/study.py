"""The study's measurements for notebook 07: one :class:`Study` runs every experiment the claims read."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from functools import cached_property

import torch

from vaestudy import bench as B
from vaestudy import data
from vaestudy import pipelines as P
from vaestudy.clock import now
from vaestudy.decode import decode_chunked, decode_full, decode_tiled
from vaestudy.decode.common import clear_vae_cache, random_latent
from vaestudy.decode.strategies import strategies_for
from vaestudy.decode.tiled import TilePlan
from vaestudy.guide.quality import (
    chunking_compare,
    clip_latent,
    groupnorm_effect,
    load_model,
)
from vaestudy.guide.sources import source_claim
from vaestudy.measure import metrics as M
from vaestudy.measure.probe import minimal_overlap, receptive_field
from vaestudy.registry.families import exemplar, family_of, get_family
from vaestudy.registry.load import load_vae
from vaestudy.storage import codec
from vaestudy.storage.latent_compression import compare_methods

# The families the study measures, each chosen by the registry for what it does (never by name):
STREAMING_FAMILY = exemplar("exact stream").name  # chunks carrying its cache are its full decode: the concepts' model
GROUPNORM_FAMILY = exemplar("groupnorm stream").name  # carries a cache, but GroupNorm makes its chunks differ
COST_FAMILIES = (STREAMING_FAMILY, GROUPNORM_FAMILY, exemplar("temporal windows").name)  # + own temporal windows


@dataclass
class Study:
    """Sizes and models of the study guide; every experiment is computed once, on first use.

    ``fast``: CI sizes (seconds each on a CPU).  ``device``: where decodes run (``cuda`` times with
    events, see :mod:`vaestudy.bench`).  ``quality_weights``: the weights behind seam and flicker
    numbers (``embedded`` here; ``pretrained`` on a GPU box).  ``cost_weights``: the weights behind
    latency and memory (``random`` full-size configs: cost does not depend on weight values).
    """

    fast: bool = True
    device: str = "cpu"
    seed: int = 0
    quality_weights: str = "embedded"
    cost_weights: str = "random"
    timings: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.quality_weights not in ("embedded", "pretrained", "tiny", "random"):
            raise ValueError(f"quality_weights={self.quality_weights!r}; valid: embedded, pretrained, tiny, random")
        if self.cost_weights not in ("random", "pretrained", "tiny"):
            raise ValueError(f"cost_weights={self.cost_weights!r}; valid: random, pretrained, tiny")

    # ----------------------------------------------------------------------------------- sizes
    @property
    def clip_frames(self) -> int:
        return 17

    @property
    def clip_size(self) -> tuple[int, int]:
        return (48, 64) if self.fast else (128, 192)

    @property
    def cost_size(self) -> tuple[int, int]:
        return (32, 32) if self.fast else (256, 256)

    @property
    def cost_frames(self) -> int:
        return 9 if self.fast else 33

    @property
    def sweep_frames(self) -> list[int]:
        return [5, 9, 13] if self.fast else [17, 33, 65]

    @property
    def repeats(self) -> int:
        return 1 if self.fast else 3

    def _timed(self, name, fn):
        t0 = now()
        out = fn()
        self.timings[name] = now() - t0
        return out

    # ----------------------------------------------------------------------------------- models and data
    def quality_model(self, family: str):
        """Trained weights for quality numbers; ``(vae, weights used)``."""

        vae, used, _ = load_model(family, self.quality_weights, seed=self.seed, device=self.device)
        return vae, used

    @cached_property
    def streaming_model(self):
        """``(vae, weights used)`` of :data:`STREAMING_FAMILY`, the family whose cached stream is exact."""
        return self.quality_model(STREAMING_FAMILY)

    @cached_property
    def groupnorm_model(self):
        """``(vae, weights used)`` of :data:`GROUPNORM_FAMILY`, the cached family whose GroupNorm spans a chunk."""
        return self.quality_model(GROUPNORM_FAMILY)

    @cached_property
    def clip(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A held-out real clip (bikes, never seen in training) and its latent from the streaming model's encoder."""

        return clip_latent(self.streaming_model[0], "bikes", self.clip_frames, self.clip_size, scale=0.5)

    @cached_property
    def groupnorm_clip(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The same clip and its latent from the GroupNorm model's encoder."""

        return clip_latent(self.groupnorm_model[0], "bikes", self.clip_frames, self.clip_size, scale=0.5)

    # ----------------------------------------------------------------------------------- 1. mental model
    @cached_property
    def machine_peak(self) -> dict:
        """The roofline ceiling of this device in fp32 (``bench.machine_peak``: best of matmul and Conv3d shapes)."""

        return self._timed("machine_peak", lambda: B.machine_peak(self.device, "float32", repeats=1 if self.fast else 3))

    @cached_property
    def family_costs(self) -> dict[str, dict]:
        """Per family (one model load each): every strategy measured side by side, and a stage profile."""
        def run():
            out = {}
            for fam in COST_FAMILIES:
                vae = load_vae(fam, self.cost_weights, device=self.device, seed=self.seed)
                recs = strategy_costs(fam, self.cost_frames, self.cost_size, weights=self.cost_weights,
                                      device=self.device, repeats=self.repeats, seed=self.seed, vae=vae)
                z = _latent(vae, self.cost_frames, self.cost_size, self.seed)
                # FLOPs per stage cost one more decode: every family at study sizes, the streaming one alone at CI sizes
                out[fam] = {"records": recs, "stages": stage_profile(vae, z, flops=not self.fast or fam == STREAMING_FAMILY,
                                                                     peak_flops=self.machine_peak["peak_flops"]),
                            "parameters": sum(p.numel() for p in vae.parameters())}
                if fam == STREAMING_FAMILY:
                    out[fam]["flops_per_px"] = chunked_flops_per_px(vae, z, self.cost_frames, self.cost_size,
                                                                    weights=self.cost_weights, device=self.device)
                    out[fam]["memory_sweep"] = memory_sweep(vae, self.sweep_frames, self.cost_size,
                                                            weights=self.cost_weights, device=self.device,
                                                            seed=self.seed)
                del vae
            return out
        return self._timed("family_costs", run)

    @property
    def strategy_costs(self) -> list[dict]:
        """Latency, time to first frame and peak memory of every strategy, per family, measured side by side."""
        return [r for v in self.family_costs.values() for r in v["records"]]

    @property
    def stage_profiles(self) -> dict[str, list[dict]]:
        """Where one full decode's time and memory go, per decoder stage, per family."""
        return {f: v["stages"] for f, v in self.family_costs.items()}

    @property
    def memory_sweep(self) -> list[dict]:
        """Peak memory of the full decode (output kept) vs the stream (frames handed on) as the video grows."""
        return self.family_costs[STREAMING_FAMILY]["memory_sweep"]

    # ----------------------------------------------------------------------------------- 2. key concepts
    @cached_property
    def cache_demo(self) -> dict:
        """Per-frame max |error| against the full decode: streamed with the cache vs naive chunks."""
        vae, used = self.streaming_model
        z = self.clip[1]
        full = decode_full(vae, z)
        cached = decode_chunked(vae, z, 1, mode="cache")
        naive = decode_chunked(vae, z, 1, mode="naive")
        per = lambda r: (r.video - full.video).abs().amax(dim=(0, 1, 3, 4)).tolist()  # noqa: E731
        return {"weights": used, "cache": per(cached), "naive": per(naive),
                "cache_max": float((cached.video - full.video).abs().max()),
                "naive_max": float((naive.video - full.video).abs().max()),
                "full_s": full.total_seconds, "cache_first_s": cached.first_frame_seconds,
                "cache_s": cached.total_seconds}

    @cached_property
    def receptive(self) -> dict:
        """Receptive field of the trained streaming decoder and the overlap sweep of 2 x 2 tiles."""

        vae, used = self.streaming_model
        lat = (3, 12, 12) if self.fast else (3, 24, 24)
        rf = receptive_field(vae, lat, seed=self.seed)
        z = self.clip[1]
        hw = min(z.shape[-2:])
        sweep = minimal_overlap(vae, z, 2, overlaps=range(0, max(1, hw // 2), 1 if self.fast else 2))
        return {"weights": used, "rf": rf, "sweep": sweep}

    @cached_property
    def norms(self) -> list[dict]:
        """Tiles and chunks against one pass: the streaming family's RMSNorm vs the GroupNorm family's (also per-frame)."""

        rows = groupnorm_effect(self.streaming_model[0], self.clip[1])
        rows += groupnorm_effect(self.groupnorm_model[0], self.groupnorm_clip[1])
        return rows

    @cached_property
    def bpp(self) -> list[dict]:
        """Measured H.264 bits per pixel (libx264 CRF 23, preset medium) of a held-out clip at three heights."""

        rgb = _bikes_rgb()
        rows = []
        for h in ((144, 272) if self.fast else (144, 240, 272)):
            size = codec.scaled_size(272, 640, h)
            r = codec.encode_h264(rgb, crf=23, size=size)
            rows.append({"height": size[0], "width": size[1], "bpp": r["bpp"]})
        return rows

    @cached_property
    def overlap_measured(self) -> dict:
        """One measured overlap run: a generator stand-in and the tiny streaming model sharing this machine."""

        vae = load_vae(STREAMING_FAMILY, "tiny", device=self.device, seed=self.seed)
        rows = P.overlap_sweep(vae, shares=(0.5,), chunks=4 if self.fast else 8)
        r = rows[0]
        return {**r, "contention": P.contention_from(r)}

    # ----------------------------------------------------------------------------------- helpers for claims
    def cost(self, family: str, strategy: str) -> dict | None:
        return next((r for r in self.strategy_costs if r["model"] == family and r["strategy"] == strategy), None)

    @cached_property
    def flicker(self) -> list[dict]:
        """Chunk-boundary flicker of the trained streaming model: source, full, cache, naive, windows."""

        video, z = self.clip
        return chunking_compare(self.streaming_model[0], z, 25.0, source=video[None], warp=False)

    @cached_property
    def latent_pack(self) -> list:

        return compare_methods(self.clip[1], sigmas=(6,), closed_loop=False)

    @cached_property
    def halo_split(self) -> dict:
        """LightX2V-style split: two column parts, the claims table's halo (latent px) and a wider one, hard crop."""
        vae, used = self.streaming_model
        z = self.clip[1]
        full = decode_full(vae, z).video
        claimed = source_claim("halo-split").figures["halo"]
        out = {"halos": (claimed, min(2 * claimed, (int(z.shape[-1]) - 2) // 2))}
        for halo in out["halos"]:
            plan = TilePlan.for_count(tuple(z.shape[-2:]), (1, 2), (0, 2 * halo))
            res = decode_tiled(vae, z, plan.tile, plan.overlap, "none")
            out[halo] = {"psnr_db": M.video_psnr(full, res.video), "max_abs": float((res.video - full).abs().max())}
        return {"weights": used, **out}

    @cached_property
    def exact_split(self) -> dict:
        """The streaming family's latent split by rows over two gloo ranks on this CPU, halos exchanged before every
        convolution (:mod:`vaestudy.pipelines.exact_split`), beside halo-and-crop at the claims table's halo: rank 0's
        record (rows per method: max |err| vs one process, bytes exchanged, seconds)."""
        _, used = self.streaming_model
        latent = (3, 8, 8) if self.fast else (5, 16, 16)
        rec = P.compare_split_methods((STREAMING_FAMILY,), ranks=2, latent=latent, weights=used, seed=self.seed,
                                      crop_halo=source_claim("halo-split").figures["halo"])[0]
        return {"weights": used, **rec}

    @cached_property
    def decode_bytes_per_px(self) -> dict:
        """Marginal full-decode peak memory per output pixel-frame (two sizes, slope) of the family the claims
        table's bytes-per-pixel anchor concerns."""

        family = get_family(source_claim("decode-bytes-per-pixel").family)
        sizes = [(64, 64), (128, 128)] if self.fast else [(256, 256), (512, 512)]
        cfgs = B.build_configs(model=family.name, weights=self.cost_weights, frames=[family.valid_frame_counts(9)[-1]],
                               sizes=sizes, strategies=["full"], repeats=1, device=self.device, seed=self.seed)
        recs = B.measure_interleaved(cfgs, flops=False)
        (a, b) = sorted(recs, key=lambda r: r["pixel_frames"])
        slope = (b["peak_bytes"] - a["peak_bytes"]) / (b["pixel_frames"] - a["pixel_frames"])
        return {"family": family.name, "records": recs, "bytes_per_pixel_frame": slope, "dtype": b["dtype"]}


# ---------------------------------------------------------------------------------------------
# measurements used above
# ---------------------------------------------------------------------------------------------
def _latent(vae, frames: int, size: tuple[int, int], seed: int) -> torch.Tensor:

    return random_latent(vae, frames, size, seed=seed)


def _bikes_rgb(frames: int = 17):
    """The held-out clip at its own size as uint8 RGB (frames, 272, 640, 3), for the H.264 rate."""

    video = data.load_clip("bikes", frames, (272, 640)).permute(1, 2, 3, 0)
    return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def family_strategies(family: str) -> list[str]:
    """The bench strategies of the strategy table that make sense for a family: streaming with its cache where it
    has one (naive chunks only where it has none)."""
    fam = get_family(family)
    return [s.name for s in strategies_for(fam, bench=True) if not (s.name == "chunked-naive" and fam.streamable)]


def strategy_costs(family: str, frames: int, size: tuple[int, int], *, weights: str = "random",
                   device: str = "cpu", repeats: int = 2, seed: int = 0, vae=None) -> list[dict]:
    """Every strategy of one family, measured interleaved (repeat r of each in turn) in this process."""

    fam = get_family(family)
    frames = fam.valid_frame_counts(frames)[-1]
    cfgs = B.build_configs(model=family, weights=weights, frames=[frames], sizes=[size],
                           strategies=family_strategies(family), repeats=repeats, device=device, seed=seed)
    return B.measure_interleaved(cfgs, vae=vae, flops=False)


def memory_sweep(vae, frames: list[int], size: tuple[int, int], *, weights: str = "random", device: str = "cpu",
                 seed: int = 0) -> list[dict]:
    """Full decode (output kept) and cached stream (frames handed on) of ``vae`` at growing frame counts, interleaved."""

    cfgs = B.build_configs(model=family_of(vae).name, weights=weights, frames=frames, sizes=[size],
                           strategies=["full", "chunked"], repeats=1, device=device, seed=seed)
    return B.measure_interleaved(cfgs, vae=vae, flops=False)


def _stages(decoder: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    out = []
    for name, child in decoder.named_children():
        if isinstance(child, torch.nn.ModuleList):
            out += [(f"{name}.{i}", c) for i, c in enumerate(child)]
        elif any(True for _ in child.parameters()):
            out.append((name, child))
    return out


@torch.no_grad()
def stage_profile(vae, z: torch.Tensor, *, flops: bool = True, peak_flops: float | None = None) -> list[dict]:
    """Wall time and largest output of every top-level stage of the decoder during one full decode, in call order.

    Forward hooks read a clock before and after each stage (synchronising first on CUDA); time spent
    between stages (the family's own chunk loop, caches, post-quant conv, clamp) is the row ``other``.
    Activation bytes are the largest single output the stage returned: the tensor that must sit in
    memory next to the next stage's work. With ``flops``, a second (untimed) decode under FlopCounterMode gives
    each stage's FLOPs and so its achieved FLOP/s (``flop_s``); with ``peak_flops`` (``bench.machine_peak``) also
    its ``fraction_of_peak`` (None with a ``peak_error`` when the stage seems to beat the peak).
    """
    cuda = z.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    rows, hooks, starts, order = {}, [], {}, []
    for name, mod in _stages(vae.decoder):
        rows[name] = {"stage": name, "seconds": 0.0, "calls": 0, "max_out_bytes": 0}

        def pre(_m, _a, name=name):
            if name not in order:
                order.append(name)
            sync()
            starts[name] = now()

        def post(_m, _a, out, name=name):
            sync()
            r = rows[name]
            r["seconds"] += now() - starts[name]
            r["calls"] += 1
            t = out[0] if isinstance(out, tuple) else out
            if torch.is_tensor(t):
                r["max_out_bytes"] = max(r["max_out_bytes"], t.numel() * t.element_size())

        hooks += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    try:
        clear_vae_cache(vae)
        sync()
        t0 = now()
        decode_full(vae, z)
        sync()
        total = now() - t0
    finally:
        for h in hooks:
            h.remove()
        clear_vae_cache(vae)
    out = [rows[n] for n in order]  # in the order the decoder first calls them
    out.append({"stage": "other", "seconds": max(0.0, total - sum(r["seconds"] for r in out)), "calls": 1,
                "max_out_bytes": 0})
    for r in out:
        r["share"] = r["seconds"] / total
    if flops:
        _stage_flops(vae, z, out, peak_flops)
    return out


def _stage_flops(vae, z: torch.Tensor, rows: list[dict], peak_flops: float | None) -> None:
    """FLOPs per decoder stage (FlopCounterMode's per-module counts, 2 per multiply-add) and the FLOP/s they ran at."""
    from torch.utils.flop_counter import FlopCounterMode


    clear_vae_cache(vae)
    try:
        with FlopCounterMode(display=False) as fc:
            decode_full(vae, z)
    finally:
        clear_vae_cache(vae)
    counts = fc.get_flop_counts()
    prefix = type(vae.decoder).__name__
    staged = 0
    for r in rows:
        if r["stage"] == "other":
            continue
        r["flops"] = int(sum(counts.get(f"{prefix}.{r['stage']}", {}).values()))
        staged += r["flops"]
    rows[-1]["flops"] = max(0, int(fc.get_total_flops()) - staged)  # outside the stages (post-quant conv, ...)
    for r in rows:
        r["flop_s"] = r["flops"] / r["seconds"] if r["seconds"] > 0 and r["flops"] else None
        r["fraction_of_peak"], r["peak_error"] = B.fraction_of_peak(r["flops"], r["seconds"], peak_flops) \
            if r["flop_s"] else (None, None)


def slow_conv3d_demo(device: str = "cpu", repeats: int = 5) -> dict:
    """Time per output voxel of a Conv3d just below and just above CPU PyTorch's slow-path threshold.

    FINDINGS.md: on CPU a Conv3d with N*C*T*H <= 20480 goes to ``slow_conv3d``.  Same kernel, same
    channels; only the height differs by a few rows.
    """
    if device != "cpu":
        return {"skipped": f"device={device}: the slow path is a CPU dispatch rule"}
    conv = torch.nn.Conv3d(16, 16, 3, padding=1)
    rows = []
    with torch.no_grad():
        for h in (320, 328):  # N*C*T*H = 1*16*4*h: 20480 (slow path) vs 20992
            x = torch.randn(1, 16, 4, h, 8)
            conv(x)
            ts = []
            for _ in range(repeats):
                t0 = now()
                conv(x)
                ts.append(now() - t0)
            rows.append({"height": h, "n_c_t_h": 16 * 4 * h, "seconds": statistics.median(ts),
                         "ns_per_voxel": statistics.median(ts) / x[0, 0].numel() * 1e9})
    return {"rows": rows, "ratio": rows[0]["ns_per_voxel"] / rows[1]["ns_per_voxel"]}


def chunked_flops_per_px(vae, z: torch.Tensor, frames: int, size: tuple[int, int], *, weights: str = "random",
                         device: str = "cpu") -> float | None:
    """FLOPs per output pixel-frame of a cached stream of ``z`` (bench's FlopCounterMode count)."""

    cfg = B.build_configs(model=family_of(vae).name, weights=weights, frames=[frames], sizes=[size], strategies=["chunked"],
                          repeats=1, device=device)[0]
    flops = B.count_flops(vae, z, cfg)
    return flops / (frames * size[0] * size[1]) if flops else None
