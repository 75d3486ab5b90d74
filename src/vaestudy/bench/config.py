"""What one measurement is: :class:`BenchConfig`, its validation, its identity key, and grids of configurations."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from vaestudy.decode.strategies import BENCH_STRATEGIES, STREAMING, get_strategy, resolve
from vaestudy.devices import check_device
from vaestudy.registry.families import DEFAULT_FAMILY, get_family
from vaestudy.registry.load import WEIGHT_SOURCES

CONSUMERS = ("discard", "keep", "video")
DTYPES = ("float32", "float16", "bfloat16")


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchConfig:
    """One measurement. Sizes in pixels (frames, (height, width)); chunk in latent frames;
    tile and overlap in latent pixels (an int or a (height, width) pair)."""

    model: str = DEFAULT_FAMILY
    weights: str = "random"
    frames: int = 17
    size: tuple[int, int] = (64, 64)
    strategy: str = "full"
    chunk: int | None = None
    tile: int | tuple[int, int] | None = None
    overlap: int | tuple[int, int] | None = None
    consumer: str = "keep"
    repeats: int = 3
    warmup: int = 1
    device: str = "cpu"
    dtype: str = "float32"
    seed: int = 0

    def params(self) -> dict:
        """Strategy parameters that matter for this strategy (others dropped)."""
        p: dict = {}
        takes = get_strategy(self.strategy).params
        if "chunk" in takes:
            p["chunk"] = self.chunk
        if "tile" in takes:
            p["tile"] = list(_pair(self.tile)) if self.tile is not None else None
            p["overlap"] = list(_pair(self.overlap)) if self.overlap is not None else None
        return p

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        d.update(self.params())
        for k in ("chunk", "tile", "overlap"):
            if k not in self.params():
                d[k] = None
        return d


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def validate_config(cfg: BenchConfig) -> BenchConfig:
    """Check a configuration without loading a model; fill in default chunk/tile/overlap.

    Raises ValueError naming the parameter, the value and what is valid.
    """

    family = get_family(cfg.model)
    if cfg.weights not in WEIGHT_SOURCES:
        raise ValueError(f"weights={cfg.weights!r} is not a weight source; valid: {', '.join(WEIGHT_SOURCES)}")
    if cfg.strategy not in BENCH_STRATEGIES:
        raise ValueError(f"strategy={cfg.strategy!r} is not timed by the bench; valid: {', '.join(BENCH_STRATEGIES)}")
    if cfg.consumer not in CONSUMERS:
        raise ValueError(f"consumer={cfg.consumer!r} is unknown; valid: {', '.join(CONSUMERS)}")
    if cfg.dtype not in DTYPES:
        raise ValueError(f"dtype={cfg.dtype!r} is unknown; valid: {', '.join(DTYPES)}")
    for name, v, lo in (("repeats", cfg.repeats, 1), ("warmup", cfg.warmup, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ValueError(f"{name}={v!r} must be an integer >= {lo}")
    if not (isinstance(cfg.size, (tuple, list)) and len(cfg.size) == 2):
        raise ValueError(f"size={cfg.size!r} must be a (height, width) pair in pixels")
    _, lt, lh, lw = family.latent_shape(cfg.frames, int(cfg.size[0]), int(cfg.size[1]))
    changes: dict = {"size": (int(cfg.size[0]), int(cfg.size[1])),
                     "device": str(check_device(cfg.device))}  # one spelling: "cuda" -> "cuda:0", "cpu:0" -> "cpu"
    params = resolve(cfg.strategy, family, (lt, lh, lw), chunk=cfg.chunk, tile=cfg.tile, overlap=cfg.overlap)
    changes.update({k: v for k, v in params.items() if k in ("chunk", "tile", "overlap")})
    return dataclasses.replace(cfg, **changes)


IDENTITY_FIELDS = ("device", "device_name", "threads", "torch", "diffusers", "dtype")


def config_key(cfg: BenchConfig, env: dict) -> str:
    """Stable hash of a configuration plus the environment fields that change results."""
    payload = {"config": cfg.as_dict(), "env": {k: env.get(k) for k in IDENTITY_FIELDS}}
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=list).encode()).hexdigest()[:16]


def _typed_list(values, name: str, kind: type, example: str) -> list:
    """A non-empty list of ``kind`` values; ValueError naming ``name`` otherwise (strings are parsed in the CLI)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{name}={values!r} must be a non-empty list, e.g. {example}")
    for v in values:
        ok = isinstance(v, kind) and not isinstance(v, bool) if kind is int else isinstance(v, kind)
        if not ok:
            raise ValueError(f"{name}={values!r} holds {v!r}; every item must be {kind.__name__}, e.g. {example}")
    return list(values)


def build_configs(*, model: str = DEFAULT_FAMILY, weights: str = "random", frames: list[int] = (17,),
                  sizes: list[tuple[int, int]] = ((64, 64),), strategies: list[str] = ("full", "tiled", "chunked",
                  "tiled+chunked"), chunk: int | None = None, tile=None, overlap=None,
                  consumers: list[str] = ("auto",), repeats: int = 3, warmup: int = 1, device: str = "cpu",
                  dtype: str = "float32", seed: int = 0) -> list[BenchConfig]:
    """Every (frames, size, strategy, consumer) configuration, validated (ValueError) before any model load.

    ``frames``: pixel frame counts; ``sizes``: (height, width) pairs in pixels; ``strategies``: names from the
    strategy table; ``consumers``: ``auto`` (streaming strategies hand frames to ``discard``, full and tiled
    ``keep``) or names of :data:`CONSUMERS`. Full and tiled produce the whole video at once, so ``discard`` is
    measured as ``keep``.
    """
    frame_list = _typed_list(frames, "frames", int, "[17, 33]")
    size_list = [tuple(s) for s in _typed_list(sizes, "sizes", tuple, "[(64, 64)]")]
    for s in size_list:
        if len(s) != 2:
            raise ValueError(f"sizes={sizes!r} holds {s!r}; every item must be a (height, width) pair in pixels")
    strategy_list = _typed_list(strategies, "strategies", str, "['full', 'chunked']")
    for s in strategy_list:
        if s not in BENCH_STRATEGIES:
            raise ValueError(f"strategy={s!r} is not timed by the bench; valid: {', '.join(BENCH_STRATEGIES)}")
    consumer_list = _typed_list(consumers, "consumers", str, "['auto']")
    for c in consumer_list:
        if c not in CONSUMERS + ("auto",):
            raise ValueError(f"consumer={c!r} is unknown; valid: auto, {', '.join(CONSUMERS)}")
    out: list[BenchConfig] = []
    for f in frame_list:
        for size in size_list:
            for s in strategy_list:
                cons = []
                for c in consumer_list:
                    if c == "auto":
                        c = "discard" if s in STREAMING else "keep"
                    if s not in STREAMING and c == "discard":
                        c = "keep"
                    if c not in cons:
                        cons.append(c)
                for c in cons:
                    cfg = BenchConfig(model=model, weights=weights, frames=f, size=size, strategy=s, chunk=chunk,
                                      tile=tile, overlap=overlap, consumer=c, repeats=repeats, warmup=warmup,
                                      device=device, dtype=dtype, seed=seed)
                    out.append(validate_config(cfg))
    return out
