"""Exact split decode: the latent split along its height over the ranks of a process group, each convolution fed
the halo rows it needs by its neighbours just before it runs, so the result is the one-process decode's.

Why height (rows): in the (B, C, [T,] H, W) layout a halo of ``p`` rows is one contiguous run of ``p * W`` values per
plane, so sending it needs no strided gather, and xDiT's DistVAE splits by rows too (the issue's anchors). The cost:
a landscape frame's boundary is its width long, so a row split sends more per boundary than a column split would.
Today's approximate split (:mod:`vaestudy.pipelines.split`) cuts columns; the comparison runs it as it is.

How each decoder module type is handled (family classes come from the registry's ``split_rules``, never by name):

* convolutions whose kernel spans the rows (``nn.Conv2d``/``nn.Conv3d`` and the registry's conv subclasses, the causal
  3-D convs included): their zero padding on the rows is switched off and, in ``_conv_forward`` -- after the family's
  own code has prepended the temporal cache and padded time and width -- the rank receives ``pad`` rows from each
  neighbour (zeros at the frame's top and bottom, which is the padding it replaced). A causal conv's leading
  (time kernel - 1) input frames are its cache, whose halo rows arrived in its previous call: those rows are kept and
  only the new frames' rows travel (``reuse_cached``; checked against the rank's own rows every call, so a family
  whose cache worked otherwise gets an error, not a wrong frame). Kernel-1 convs are local.
  Stride or dilation along the rows, or non-zero padding modes, are refused.
* ``nn.GroupNorm``: per (sample, group) sum, sum of squares and count are all-reduced in float64, and each rank
  normalises with the whole frame's mean and variance. Per-pixel norms (RMS over channels) are local.
* the mid-block attention (the registry's ``attention_block``): all_gather of the slab, the block runs on the whole
  frame, the rank keeps its rows. Modules inside it are not patched.
* nearest upsamplers with integer factors are local, because every slab starts on a latent row (so on an even row at
  every scale); any other ``nn.Upsample`` is refused.
* composites (blocks whose own code reshapes, concatenates in time or interpolates by integer nearest factors), and
  element-wise modules (activations, dropout in eval mode, identity) need nothing.
* any other module class raises :class:`SplitUnsupported` naming it, before anything runs.

Longer than 500 lines because the exchange, the module patches that call it, the shape trace that prices it and the
comparison task that runs it share one set of invariants (the row plan, the byte categories); apart, one mechanism
would be spread over four files.

Bytes are counted as the payload a rank hands to the communication calls (a sent halo, an all-reduced or all-gathered
tensor); the wire traffic of a collective depends on its algorithm (a ring all-reduce moves about 2(n-1)/n of it).
"""

from __future__ import annotations

import contextlib
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vaestudy.clock import now
from vaestudy.decode.common import clear_vae_cache, latent_channels
from vaestudy.decode.streams import chunk_plan, open_stream
from vaestudy.measure.oracle import compare
from vaestudy.pipelines import distributed
from vaestudy.pipelines.split import split_decode, split_plan
from vaestudy.pipelines.two_device import inject_failure
from vaestudy.registry.families import DEFAULT_FAMILY, family_of, get_family
from vaestudy.registry.load import load_vae

CATEGORIES = ("halo", "norm", "attention", "output")  # what a rank sends: conv halos, GroupNorm sums, gathers
METHODS = ("exact halo exchange", "halo-and-crop")
_POINTWISE = (nn.SiLU, nn.GELU, nn.ReLU, nn.Mish, nn.Tanh, nn.Sigmoid, nn.Identity, nn.Dropout)
_CONTAINERS = (nn.ModuleList, nn.Sequential)
_MISSING = object()


class SplitUnsupported(NotImplementedError):
    """A decoder module the exact split decode does not know how to split (it would silently be wrong)."""


def exact_split_plan(rows: int, ranks: int) -> list[tuple[int, int]]:
    """Latent rows [start, stop) of each rank: contiguous, near-equal, none empty."""
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        raise ValueError(f"rows={rows!r} must be a positive number of latent rows")
    if not isinstance(ranks, int) or isinstance(ranks, bool) or ranks < 1 or ranks > rows:
        raise ValueError(f"ranks={ranks!r} must be an integer in [1, latent rows={rows}]: every rank needs a row")
    bounds = [i * rows // ranks for i in range(ranks + 1)]
    return list(zip(bounds, bounds[1:]))


# ---- the communication of one rank ---------------------------------------------------------------------------------
class SlabExchange:
    """What one rank sends and receives during a split decode, with the bytes it hands to the network per category.

    ``dry=True`` sends nothing: it returns empty tensors of the shapes it would receive and counts what it would send
    (a shape trace on the meta device computes the bytes this way before any decode runs).
    """

    def __init__(self, plan: list[tuple[int, int]], rank: int, group=None, *, dry: bool = False,
                 fail_rank: int = -1, fail_mode: str = "raise", fail_after: int = 0, timeout_s: float = 60.0,
                 reuse_cached: bool = True):
        self.plan, self.rank, self.world, self.group, self.dry = plan, rank, len(plan), group, dry
        self.reuse_cached = reuse_cached
        self._tails: dict = {}  # conv key -> (own leading frames expected next, halo above, halo below) kept
        self.sent = dict.fromkeys(CATEGORIES, 0)
        self.calls = 0
        self._fail = (fail_rank, fail_mode, fail_after, timeout_s)

    def _rows(self, r: int) -> int:
        return self.plan[r][1] - self.plan[r][0]

    def _peer(self, r: int) -> int:
        return r if self.group is None else dist.get_global_rank(self.group, r)

    def _scale(self, x: torch.Tensor) -> int:
        """Activation rows per latent row at this layer (the same on every rank: integer upsampling)."""
        h, own = x.shape[-2], self._rows(self.rank)
        if h % own:
            raise SplitUnsupported(f"an activation of {h} rows on rank {self.rank} is not a whole multiple of its "
                                   f"{own} latent rows: a layer resamples rows by a non-integer factor")
        return h // own

    def _count(self, category: str, t: torch.Tensor) -> None:
        self.sent[category] += t.numel() * t.element_size()

    def _tick(self) -> None:
        """One exchange (a synchronisation point with the neighbours or the group) begins."""
        self.calls += 1
        fail_rank, mode, after, timeout_s = self._fail
        if not self.dry and self.calls == after:  # test hook: this rank dies or hangs in the middle of a decode
            inject_failure(fail_rank, mode, timeout_s)

    def halo(self, x: torch.Tensor, top: int, bottom: int, key=None, cached: int = 0) -> torch.Tensor:
        """``x`` with ``top`` rows of the rank above and ``bottom`` rows of the rank below (zeros at frame edges).

        ``cached``: the conv's time kernel minus one. A causal conv fed by its temporal cache sees, from its second
        call on, the previous call's last ``cached`` input frames first; their halo rows arrived then, so with
        ``reuse_cached`` only the new frames' rows are exchanged (checked on this rank's own rows every call).
        """
        if cached and self.reuse_cached and x.ndim == 5 and key in self._tails and x.shape[2] > cached:
            mine, above, below = self._tails[key]
            if not self.dry and not torch.equal(mine, x[:, :, :cached]):
                raise SplitUnsupported(f"rank {self.rank}: a convolution's leading {cached} input frames are not its "
                                       f"previous call's last ones, so its cached halo cannot be reused; run with "
                                       f"reuse_cached=False")
            fresh = self._halo(x[:, :, cached:], top, bottom)
            out = torch.cat([torch.cat([above, x[:, :, :cached], below], dim=-2), fresh], dim=2)
        else:
            out = self._halo(x, top, bottom)
        if cached and self.reuse_cached and x.ndim == 5 and x.shape[2] >= cached:
            tail = out[:, :, -cached:]
            self._tails[key] = (x[:, :, -cached:].clone(), tail[..., :top, :].clone(),
                                tail[..., tail.shape[-2] - bottom:, :].clone())
        return out

    def _halo(self, x: torch.Tensor, top: int, bottom: int) -> torch.Tensor:
        s = self._scale(x)
        r, shape = self.rank, list(x.shape)
        if self.world > 1:
            self._tick()
        for who, p in ((r, max(top, bottom)), (r - 1, top), (r + 1, bottom)):  # halos come from one neighbour
            if 0 <= who < self.world and self._rows(who) * s < p:
                raise SplitUnsupported(f"rank {who} holds {self._rows(who) * s} rows at this layer, fewer than the "
                                       f"halo of {p} a convolution needs: use fewer ranks")
        ops, recv = [], {}
        for nb, want, give in ((r - 1, top, bottom), (r + 1, bottom, top)):
            if not 0 <= nb < self.world:
                continue
            if give:  # the neighbour above needs as many of my first rows as its convs pad at the bottom
                out = (x[..., :give, :] if nb < r else x[..., -give:, :]).contiguous()
                self._count("halo", out)
                if not self.dry:
                    ops.append(dist.P2POp(dist.isend, out, self._peer(nb), self.group))
            if want:
                recv[nb] = x.new_empty(shape[:-2] + [want, shape[-1]])
                if not self.dry:
                    ops.append(dist.P2POp(dist.irecv, recv[nb], self._peer(nb), self.group))
        if ops:
            for req in dist.batch_isend_irecv(ops):
                req.wait()
        above = recv.get(r - 1, x.new_zeros(shape[:-2] + [top, shape[-1]]))
        below = recv.get(r + 1, x.new_zeros(shape[:-2] + [bottom, shape[-1]]))
        return torch.cat([above, x, below], dim=-2)

    def group_norm(self, gn: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
        """``gn(x)`` with statistics over the whole frame: float64 sums, sums of squares and counts all-reduced."""
        if self.world == 1:
            return F.group_norm(x, gn.num_groups, gn.weight, gn.bias, gn.eps)  # one rank: nothing to pool
        self._tick()
        b, c = x.shape[:2]
        xg = x.reshape(b, gn.num_groups, -1).double()
        stats = torch.stack([xg.sum(-1), (xg * xg).sum(-1), torch.full_like(xg[..., 0], xg.shape[-1])], dim=-1)
        self._count("norm", stats)
        if not self.dry:
            dist.all_reduce(stats, group=self.group)
        mean = stats[..., 0] / stats[..., 2]
        var = (stats[..., 1] / stats[..., 2] - mean * mean).clamp_min(0.0)
        y = ((xg - mean[..., None]) * torch.rsqrt(var + gn.eps)[..., None]).to(x.dtype).reshape(x.shape)
        if gn.affine:
            view = (1, c) + (1,) * (x.ndim - 2)
            y = y * gn.weight.view(view) + gn.bias.view(view)
        return y

    def _gather_rows(self, x: torch.Tensor, category: str) -> torch.Tensor:
        """The whole frame from every rank's rows (all_gather, parts padded to the tallest)."""
        if self.world == 1:
            return x
        self._tick()
        s = self._scale(x)
        sizes = [self._rows(r) * s for r in range(self.world)]
        padded = F.pad(x, (0, 0, 0, max(sizes) - x.shape[-2])).contiguous()
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        self._count(category, padded)
        if not self.dry:
            dist.all_gather(parts, padded, group=self.group)
        else:
            parts[self.rank] = padded
        return torch.cat([p[..., :n, :] for p, n in zip(parts, sizes)], dim=-2)

    def own_rows(self, full: torch.Tensor, x_rows: int) -> torch.Tensor:
        """This rank's rows of a whole-frame tensor whose layer has ``x_rows`` rows on this rank."""
        s = x_rows // self._rows(self.rank)
        start = sum(self._rows(r) for r in range(self.rank)) * s
        return full[..., start:start + x_rows, :].contiguous()

    def attention(self, forward, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """Run an attention block over the whole frame and keep this rank's rows."""
        return self.own_rows(forward(self._gather_rows(x, "attention"), *args, **kwargs), x.shape[-2])

    def gather_output(self, slab: torch.Tensor) -> torch.Tensor:
        """The decoded video on every rank from each rank's slab of pixel rows."""
        return self._gather_rows(slab, "output")


# ---- patching the real diffusers decoder ---------------------------------------------------------------------------
def _rule(module: nn.Module, family) -> str:
    """How the split decode treats one module (the registry's rule for family classes, torch's own classes here)."""
    name = type(module).__name__
    if name == family.attention_block:
        return "frame attention"
    if name in family.split_rules:
        for attr, valid in family.split_requires.get(name, {}).items():
            if getattr(module, attr, _MISSING) not in valid:
                raise SplitUnsupported(f"{name}.{attr}={getattr(module, attr, None)!r}: the exact split decode "
                                       f"handles only {attr} in {valid} for {family.name}")
        return family.split_rules[name]
    kind = type(module)
    if kind in (nn.Conv2d, nn.Conv3d):
        return "conv"
    if kind is nn.GroupNorm:
        return "group norm"
    if kind is nn.Upsample:
        return "upsample"
    if kind in _CONTAINERS:
        return "composite"
    if kind in _POINTWISE:
        if isinstance(module, nn.Dropout) and module.training and module.p > 0:
            raise SplitUnsupported("dropout in training mode draws a different mask on every rank: call vae.eval()")
        return "pointwise"
    raise SplitUnsupported(f"decoder module class {name} ({kind.__module__}) has no split rule for {family.name}: "
                           f"add one to the registry's split_rules once its forward is checked to be local, or extend "
                           f"the exact split decode")


def _conv_halo(module: nn.Module, rule: str) -> tuple[str, tuple, tuple, int, int]:
    """(padding attribute, its value, the value without row padding, rows above, rows below) of one conv."""
    k, stride, dil = module.kernel_size[-2], module.stride[-2], module.dilation[-2]
    if stride != 1 or dil != 1:
        raise SplitUnsupported(f"{type(module).__name__} with stride {stride} / dilation {dil} along the rows: only "
                               f"stride-1 undilated convolutions are split exactly")
    if module.padding_mode != "zeros" or isinstance(module.padding, str):
        raise SplitUnsupported(f"{type(module).__name__} pads with {module.padding_mode!r}/{module.padding!r}: only "
                               f"explicit zero padding is replaced by a halo")
    if rule == "conv":
        attr, old = "padding", tuple(module.padding)
        top = bottom = old[-2]
        new = old[:-2] + (0,) + old[-1:]
    else:
        attr = rule.split(":", 1)[1]
        old = tuple(getattr(module, attr))
        top, bottom = old[2], old[3]  # F.pad order: (left, right, top, bottom, front, back)
        new = old[:2] + (0, 0) + old[4:]
        if module.padding[-2]:
            raise SplitUnsupported(f"{type(module).__name__} pads rows both in {attr} and in padding")
    if top + bottom != k - 1:
        raise SplitUnsupported(f"{type(module).__name__} with kernel {k} and row padding ({top}, {bottom}) changes "
                               f"the number of rows: only 'same' convolutions are split exactly")
    return attr, old, new, top, bottom


def _set(saved: list, obj, name: str, value) -> None:
    saved.append((obj, name, obj.__dict__.get(name, _MISSING)))
    setattr(obj, name, value)


def split_rules_of(vae: nn.Module) -> dict[str, str]:
    """{module path: how the split decode treats it} over the modules a stream runs; SplitUnsupported otherwise."""
    family = family_of(vae)
    out, skip = {}, []
    for root_name in ("post_quant_conv", "decoder"):
        root = getattr(vae, root_name, None)
        if root is None:
            continue
        for name, m in root.named_modules(prefix=root_name):
            if any(name.startswith(s + ".") for s in skip):
                continue  # inside a gathered attention block: it runs on the whole frame
            rule = _rule(m, family)
            if rule == "frame attention":
                skip.append(name)
            elif rule == "upsample" and (m.mode not in ("nearest", "nearest-exact") or m.size is not None or any(
                    float(f) != int(f) for f in (m.scale_factor if isinstance(m.scale_factor, tuple)
                                                 else (m.scale_factor,)))):
                raise SplitUnsupported(f"{name}: upsampling mode {m.mode!r} by {m.scale_factor} mixes rows across "
                                       f"slab boundaries; only nearest by integer factors is local")
            elif rule == "conv" or rule.startswith("conv:"):
                if m.kernel_size[-2] > 1:
                    _conv_halo(m, rule)  # refuses what it cannot split, before anything is patched
                elif any(getattr(m, rule.split(":", 1)[1])[2:4]) if ":" in rule else m.padding[-2]:
                    raise SplitUnsupported(f"{name}: a kernel-1 convolution that pads rows")
            out[name] = rule
    return out


def split_support(vae: nn.Module) -> str | None:
    """Why the exact split cannot decode ``vae`` (a sentence), or None when it can: it splits the family's stream
    (the decoder called chunk by chunk with its cache carried, compared with the same stream in one process), so it
    needs a cache, and a split rule for every decoder module."""
    family = family_of(vae)
    if not family.cache:
        return (f"{family.name} exposes no temporal cache, and the split decodes the family's stream chunk by chunk "
                "with its cache carried")
    try:
        split_rules_of(vae)
    except SplitUnsupported as exc:
        return f"{family.name}'s decoder has a module the split cannot divide by rows: {exc}"
    return None


@contextlib.contextmanager
def exact_split_patches(vae: nn.Module, exchange: SlabExchange):
    """Within the block, the decoder of ``vae`` runs on this rank's slab and talks to the other ranks through
    ``exchange``; every patched attribute is restored afterwards, also on error."""
    rules = split_rules_of(vae)
    modules = dict(vae.named_modules())
    saved: list = []
    try:
        for name, rule in rules.items():
            m = modules[name]
            if rule == "group norm":
                _set(saved, m, "forward", lambda x, _m=m: exchange.group_norm(_m, x))
            elif rule == "frame attention":
                _set(saved, m, "forward", lambda x, *a, _f=m.forward, **k: exchange.attention(_f, x, *a, **k))
            elif (rule == "conv" or rule.startswith("conv:")) and m.kernel_size[-2] > 1:
                attr, _, new, top, bottom = _conv_halo(m, rule)
                _set(saved, m, attr, new)
                cached = m.kernel_size[0] - 1 if m.weight.ndim == 5 else 0  # causal time kernel: frames cached
                _set(saved, m, "_conv_forward", lambda x, w, b, _f=m._conv_forward, _t=top, _b=bottom, _k=name,
                     _c=cached: _f(exchange.halo(x, _t, _b, _k, _c), w, b))
        yield rules
    finally:
        for obj, name, old in reversed(saved):
            if old is _MISSING:
                delattr(obj, name)
            else:
                setattr(obj, name, old)


@contextlib.contextmanager
def _meta_weights(vae: nn.Module):
    """Parameters and buffers on the meta device within the block (a shape trace allocates and computes nothing)."""
    saved = []
    try:
        for m in vae.modules():
            for store in (m._parameters, m._buffers):
                for k, v in list(store.items()):
                    if v is not None:
                        saved.append((store, k, v))
                        meta = torch.empty_like(v, device="meta")
                        store[k] = nn.Parameter(meta, requires_grad=False) if isinstance(v, nn.Parameter) else meta
        yield
    finally:
        for store, k, v in saved:
            store[k] = v


# ---- decoding ------------------------------------------------------------------------------------------------------
def decode_slab(vae: nn.Module, z_slab: torch.Tensor, exchange: SlabExchange, chunk: int) -> torch.Tensor:
    """This rank's pixel rows of the streamed decode (``chunk`` latent frames per step, the family's cache carried)."""
    family = family_of(vae)
    clear_vae_cache(vae)
    try:
        with torch.no_grad(), exact_split_patches(vae, exchange):
            stream = open_stream(vae)
            return torch.cat([stream.step(z_slab[:, :, a:b]) for a, b in chunk_plan(family, z_slab.shape[2], chunk)],
                             dim=2)
    finally:
        clear_vae_cache(vae)


def exact_split_decode(vae: nn.Module, z: torch.Tensor, *, chunk: int | None = None, group=None,
                       reuse_cached: bool = True, fail_rank: int = -1, fail_mode: str = "raise", fail_after: int = 0,
                       timeout_s: float = 60.0) -> dict:
    """Decode ``z`` with its rows split over the ranks of ``group``; every rank reads only its own latent rows and
    returns the whole video (rank-identical), its bytes sent per category and its seconds.

    Must be called by every rank of the group with a latent of the same shape. The device is the model's.
    """
    family = family_of(vae)
    chunk = chunk or family.default_chunk
    family.check_chunk(chunk)
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    plan = exact_split_plan(int(z.shape[-2]), world)
    a, b = plan[rank]
    ex = SlabExchange(plan, rank, group, fail_rank=fail_rank, fail_mode=fail_mode, fail_after=fail_after,
                      timeout_s=timeout_s, reuse_cached=reuse_cached)
    dist.barrier(group)
    t0 = now()
    slab = decode_slab(vae, z[..., a:b, :].contiguous(), ex, chunk)
    t_dec = now() - t0
    with torch.no_grad():
        video = ex.gather_output(slab)
    return {"video": video, "plan": plan, "sent": dict(ex.sent), "decode_s": t_dec, "total_s": now() - t0}


def exchange_bytes(vae: nn.Module, latent_shape, ranks: int, *, chunk: int | None = None,
                   dtype: torch.dtype | None = None, reuse_cached: bool = True) -> dict:
    """Bytes each rank sends in one exact split decode, computed from the shapes alone: a trace of every rank's slab
    through the decoder on the meta device (nothing is computed or sent). Returns per-rank dicts, totals, and the
    number of exchanges (halo swaps, all-reduces, gathers: each a synchronisation point) per rank."""
    family = family_of(vae)
    if len(latent_shape) != 5:
        raise ValueError(f"latent_shape={tuple(latent_shape)!r} must be (batch, channels, frames, rows, columns)")
    bsz, c, t, h, w = (int(v) for v in latent_shape)
    family.check_latent_frames(t, "latent_shape frames")
    chunk = chunk or family.default_chunk
    family.check_chunk(chunk)
    plan = exact_split_plan(h, ranks)
    dtype = dtype or next(vae.parameters()).dtype
    per_rank, calls = [], []
    with _meta_weights(vae):
        for r in range(ranks):
            ex = SlabExchange(plan, r, dry=True, reuse_cached=reuse_cached)
            z = torch.empty(bsz, c, t, plan[r][1] - plan[r][0], w, device="meta", dtype=dtype)
            ex.gather_output(decode_slab(vae, z, ex, chunk))
            per_rank.append(dict(ex.sent))
            calls.append(ex.calls)
    return {"per_rank": per_rank, "total": {k: sum(p[k] for p in per_rank) for k in CATEGORIES},
            "exchanges": calls}


def crop_gather_bytes(vae: nn.Module, latent_shape, ranks: int, halo: int, chunk: int) -> int:
    """Bytes each rank hands to all_gather in one halo-and-crop decode (split.py): its padded piece per chunk."""
    family = family_of(vae)
    bsz, _, t, h, w = (int(v) for v in latent_shape)
    s = family.spatial_compression
    maxw = max(p.in_stop - p.in_start for p in split_plan(w, ranks, halo)) * s
    frames = sum(family.latent_to_pixel_frames(a, b)[1] - family.latent_to_pixel_frames(a, b)[0]
                 for a, b in chunk_plan(family, t, chunk))
    return bsz * 3 * frames * h * s * maxw * torch.finfo(next(vae.parameters()).dtype).bits // 8


@contextlib.contextmanager
def _count_all_gather(counter: list):
    """Count the bytes handed to ``dist.all_gather`` within the block (split.py's own exchange)."""
    original = dist.all_gather

    def counting(tensor_list, tensor, *args, **kwargs):
        counter[0] += tensor.numel() * tensor.element_size()
        return original(tensor_list, tensor, *args, **kwargs)

    dist.all_gather = counting
    try:
        yield counter
    finally:
        dist.all_gather = original


# ---- the comparison, as a distributed task -------------------------------------------------------------------------
@dataclass
class ExactSplitConfig:
    """One comparison run: model, latent (frames, rows, columns), chunking, the crop baseline's halo, test hooks."""

    model: str = DEFAULT_FAMILY
    weights: str = "tiny"
    seed: int = 0
    latent: tuple[int, int, int] = (3, 16, 16)
    chunk: int = 0  # latent frames per streamed step (0: the family's default)
    crop_halo: int = 2  # halo (latent columns) of today's halo-and-crop split, LightX2V's 2
    reuse_cached: bool = True  # exchange only new frames' halo rows (the cached frames' rows arrived a call before)
    threads: int = 1
    repeats: int = 1
    warmup: int = 0  # untimed runs of each method first
    save_to: str = ""  # a folder: rank 0 saves {"reference", "exact", "crop"} to MODEL-RANKS.pt there, for tests
    fail_rank: int = -1  # test hook: this rank fails ...
    fail_mode: str = "raise"  # ... by raising or hanging (see two_device.inject_failure) ...
    fail_after: int = 1  # ... at its n-th exchange of the first exact decode

    def validate(self) -> "ExactSplitConfig":
        fam = get_family(self.model)
        if len(self.latent) != 3 or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in self.latent):
            raise ValueError(f"latent={self.latent!r} must be three positive integers (frames, rows, columns)")
        fam.check_latent_frames(self.latent[0], "latent frames")
        if self.chunk:
            fam.check_chunk(self.chunk)
        for pname in ("crop_halo", "repeats", "threads", "warmup"):
            v = getattr(self, pname)
            if not isinstance(v, int) or v < (0 if pname in ("crop_halo", "warmup") else 1):
                raise ValueError(f"{pname}={v!r} must be an integer >= {0 if pname in ('crop_halo', 'warmup') else 1}")
        if self.fail_mode not in ("raise", "hang"):
            raise ValueError(f"fail_mode={self.fail_mode!r} must be 'raise' or 'hang'")
        return self

    def check_ranks(self, ranks: int) -> None:
        """ValueError naming ``ranks`` when the latent cannot be split that many ways (by rows, and by columns for
        the crop baseline)."""
        _, h, w = self.latent
        exact_split_plan(h, ranks)
        if ranks > w:
            raise ValueError(f"ranks={ranks} must be <= latent columns={w} for the halo-and-crop baseline")


def exact_split_worker(cfg: ExactSplitConfig, *, timeout_s: float = 60.0) -> dict | None:
    """Every rank: the exact split decode and today's halo-and-crop at the group's size; rank 0 also decodes the
    whole latent alone (the reference), computes the bytes from the shapes and returns the rows; others return None."""
    cfg.validate()
    rank, world = dist.get_rank(), dist.get_world_size()
    cfg.check_ranks(world)
    torch.set_num_threads(cfg.threads)
    dev = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    vae = load_vae(cfg.model, cfg.weights, seed=cfg.seed, device=dev)
    fam = family_of(vae)
    chunk = cfg.chunk or fam.default_chunk
    t, h, w = cfg.latent
    z = torch.randn(1, latent_channels(vae), t, h, w, generator=torch.Generator().manual_seed(cfg.seed)).to(dev)
    fail = {"fail_rank": cfg.fail_rank, "fail_mode": cfg.fail_mode, "fail_after": cfg.fail_after}

    exact, crop, crop_sent = [], [], [0]
    for i in range(cfg.warmup + cfg.repeats):  # the failure hook fires in the very first exact decode
        res = exact_split_decode(vae, z, chunk=chunk, timeout_s=timeout_s, reuse_cached=cfg.reuse_cached,
                                 **(fail if i == 0 else {}))
        if i >= cfg.warmup:
            exact.append(res)
    for i in range(cfg.warmup + cfg.repeats):
        crop_sent[0] = 0
        clear_vae_cache(vae)
        with _count_all_gather(crop_sent):
            res = split_decode(vae, z, cfg.crop_halo, chunk=chunk)
        clear_vae_cache(vae)
        if i >= cfg.warmup:
            crop.append(res)
    measured = [None] * world
    dist.all_gather_object(measured, {"exact": exact[-1]["sent"], "crop": crop_sent[0],
                                      "exact_s": [r["total_s"] for r in exact], "crop_s": [r["total_s"] for r in crop]})
    if rank != 0:
        dist.barrier()
        return None
    single_s, ref = [], None
    for _ in range(cfg.warmup + cfg.repeats):
        clear_vae_cache(vae)
        t0 = now()
        with torch.no_grad():
            stream = open_stream(vae)
            ref = torch.cat([stream.step(z[:, :, a:b]) for a, b in chunk_plan(fam, t, chunk)], dim=2)
        single_s.append(now() - t0)
        clear_vae_cache(vae)
    single_s = single_s[cfg.warmup:]
    computed = exchange_bytes(vae, z.shape, world, chunk=chunk, reuse_cached=cfg.reuse_cached)
    crop_computed = crop_gather_bytes(vae, z.shape, world, cfg.crop_halo, chunk)
    dist.barrier()
    rows = []
    for method, video, seconds, comp, meas, comp_rank, meas_rank in (
            (METHODS[0], exact[-1]["video"], [max(m["exact_s"][i] for m in measured) for i in range(cfg.repeats)],
             computed["total"], {k: sum(m["exact"][k] for m in measured) for k in CATEGORIES},
             computed["per_rank"], [m["exact"] for m in measured]),
            (METHODS[1], crop[-1]["video"], [max(m["crop_s"][i] for m in measured) for i in range(cfg.repeats)],
             {**dict.fromkeys(CATEGORIES, 0), "output": crop_computed * world},
             {**dict.fromkeys(CATEGORIES, 0), "output": sum(m["crop"] for m in measured)},
             [{**dict.fromkeys(CATEGORIES, 0), "output": crop_computed}] * world,
             [{**dict.fromkeys(CATEGORIES, 0), "output": m["crop"]} for m in measured])):
        c = compare(ref.cpu(), video.cpu())
        rows.append({"method": method, "ranks": world, "max_abs": c["max_abs"], "psnr_db": c["psnr_db"],
                     "bytes_computed": comp, "bytes_measured": meas, "rank_bytes_computed": comp_rank,
                     "rank_bytes_measured": meas_rank, "time_s": seconds, "median_s": statistics.median(seconds)})
    if cfg.save_to:
        torch.save({"reference": ref.cpu(), "exact": exact[-1]["video"].cpu(), "crop": crop[-1]["video"].cpu()},
                   Path(cfg.save_to) / f"{fam.name}-{world}.pt")
    return {"config": {**cfg.__dict__, "latent": list(cfg.latent)}, "model": fam.name, "world": world,
            "chunk": chunk, "latent_shape": list(z.shape), "pixel_shape": list(ref.shape), "single_s": single_s,
            "single_median_s": statistics.median(single_s), "rows": rows}


LAUNCHERS = ("local", "torchrun")


def compare_split_methods(models=(DEFAULT_FAMILY,), ranks: int = 2, latent=(3, 16, 16), *, timeout_s: float = 120.0,
                          launcher: str = "local", deadline_s: float = 1800.0, **settings) -> list[dict]:
    """Run :func:`exact_split_worker` for each model (a name or a list) on ``ranks`` local ranks, one process group
    for all of them, and return rank 0's records, one per model.

    ``launcher="local"``: forked ranks (``distributed.launch_local``; a failure raises ``ProcessRaisedException``);
    ``"torchrun"``: ``distributed.launch`` (a failure raises ``DistributedRunError``, the rank chosen by
    ``distributed.blame``; the whole run is also killed after ``deadline_s``). Either way a rank that fails or stops
    answering ends the run within about ``timeout_s`` seconds of it (every collective and point-to-point wait is
    bounded by it), with an error naming that rank.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher={launcher!r} is unknown; valid: {', '.join(LAUNCHERS)}")
    models = [models] if isinstance(models, str) else list(models)
    if not models:
        raise ValueError("models=[] : name at least one model")
    cfgs = [ExactSplitConfig(model=m, latent=tuple(latent), **settings).validate() for m in models]
    for cfg in cfgs:
        cfg.check_ranks(ranks)
    items = [{"task": "exact-split", "config": {**c.__dict__, "latent": list(c.latent)}} for c in cfgs]
    task, cfg = ("exact-split", items[0]["config"]) if len(items) == 1 else ("batch", items)
    if launcher == "torchrun":
        rec = distributed.launch(task, cfg, nproc=ranks, timeout_s=timeout_s, deadline_s=deadline_s)
    else:
        rec = distributed.launch_local(task, cfg, nproc=ranks, timeout_s=timeout_s)
    return rec["results"] if task == "batch" else [rec]


def format_split_rows(records: list[dict]) -> str:
    """A plain-text table of comparison records: one line per method and rank count."""
    head = (f"{'model':<10} {'method':<20} {'ranks':>5} {'max abs':>9} {'PSNR dB':>8} {'sent kB comp':>12} "
            f"{'sent kB meas':>12} {'of it output':>12} {'time s':>7} {'1-proc s':>8}")
    lines = [head, "-" * len(head)]
    for rec in records:
        for r in rec["rows"]:
            comp, meas = sum(r["bytes_computed"].values()), sum(r["bytes_measured"].values())
            lines.append(f"{rec['model']:<10} {r['method']:<20} {r['ranks']:>5} {r['max_abs']:>9.2e} "
                         f"{r['psnr_db']:>8.1f} {comp / 1e3:>12.1f} {meas / 1e3:>12.1f} "
                         f"{r['bytes_measured']['output'] / 1e3:>12.1f} {r['median_s']:>7.3f} "
                         f"{rec['single_median_s']:>8.3f}")
    return "\n".join(lines)
