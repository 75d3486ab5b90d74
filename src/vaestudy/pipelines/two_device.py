"""Encode on one rank, decode on another: the two-rank streaming worker, failure injection and its summary."""

from __future__ import annotations

import math
import statistics
import threading
import time
from dataclasses import asdict, dataclass

import torch
import torch.distributed as dist

from vaestudy.clock import synchronize
from vaestudy.data import clip_info, load_clip
from vaestudy.pipelines.overlap import POLICIES, now, scope_ceiling
from vaestudy.pipelines.queues import BoundedQueue, FrameRing
from vaestudy.pipelines.streaming import encode_clip, open_pipeline_stream, stream_plan
from vaestudy.registry.families import DEFAULT_FAMILY, family_of, get_family
from vaestudy.registry.load import load_vae
from vaestudy.storage import compression as C


# ---------------------------------------------------------------------------------------------
# 3. encode on rank 0, decode on rank 1 (torch.distributed point-to-point)
# ---------------------------------------------------------------------------------------------
@dataclass
class TwoDeviceConfig:
    """One run of :func:`two_device_worker` (sizes in pixels, times in seconds)."""

    model: str = DEFAULT_FAMILY
    weights: str = "tiny"
    seed: int = 0
    clip: str = "carphone"  # vaestudy.data clip; "random" for seeded noise frames
    size: tuple[int, int] = (32, 32)
    window: int = 5  # pixel frames per window, a valid clip length of the family (each window is one clip)
    windows: int = 6
    fps: float = 8.0  # capture rate and output rate
    window_queue: int = 2  # assembled windows waiting for the encoder (capture never blocks: drops)
    send_queue: int = 2
    send_policy: str = "block"
    recv_queue: int = 2
    ring_frames: int = 0  # output ring capacity (0: 3 windows)
    prebuffer_s: float = 0.0  # playout delay after the first decoded frame
    threads: int = 1  # torch threads per rank
    fail_rank: int = -1  # test hook: this rank fails after setup
    fail_mode: str = "raise"  # "raise" (the process dies) or "hang" (it stops answering)
    encode_delay_s: float = 0.0  # test hook: extra sleep per encode (a slow encoder)
    decode_delay_s: float = 0.0  # test hook: extra sleep per window decode (a slow decoder)

    def validate(self) -> "TwoDeviceConfig":

        fam = get_family(self.model)
        fam.check_frames(self.window, "window")
        fam.latent_shape(self.window, *self.size)
        for name in ("windows", "window_queue", "send_queue", "recv_queue"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r} must be an integer >= 1")
        if self.send_policy not in POLICIES:
            raise ValueError(f"send_policy={self.send_policy!r} is unknown; valid: {', '.join(POLICIES)}")
        if not self.fps > 0:
            raise ValueError(f"fps={self.fps!r} must be > 0")
        if self.ring_frames < 0 or self.prebuffer_s < 0:
            raise ValueError(f"ring_frames={self.ring_frames} and prebuffer_s={self.prebuffer_s} must be >= 0")
        return self


def inject_failure(fail_rank: int, mode: str, timeout_s: float) -> None:
    """Test hook: on rank ``fail_rank`` raise, or hang for three timeouts (then raise)."""

    rank = dist.get_rank()
    if fail_rank != rank:
        return
    if mode not in ("raise", "hang"):
        raise ValueError(f"fail_mode={mode!r} must be 'raise' or 'hang'")
    if mode == "hang":
        time.sleep(3 * timeout_s)
    raise RuntimeError(f"injected failure on rank {rank} (fail_rank={fail_rank}, fail_mode={mode})")


def capture_frames(cfg: TwoDeviceConfig) -> torch.Tensor:
    """(3, frames, H, W) in [-1, 1] for the whole run: a real clip when available (looped when the run needs more
    frames than it holds, as long windows of a fixed-grid family do), else seeded noise."""
    n = cfg.window * cfg.windows
    if cfg.clip != "random":

        try:
            info = clip_info(cfg.clip)
            scale = max(cfg.size[0] / info["height"], cfg.size[1] / info["width"]) * 1.05
            stride = max(1, min(3, (info["frames"] - 1) // max(n - 1, 1)))
            if (n - 1) * stride + 1 <= info["frames"]:
                return load_clip(cfg.clip, n, cfg.size, stride=stride, scale=scale)
            clip = load_clip(cfg.clip, info["frames"], cfg.size, scale=scale)
            return clip[:, torch.arange(n) % clip.shape[1]]
        except (FileNotFoundError, ValueError):
            pass
    g = torch.Generator().manual_seed(cfg.seed)
    return torch.rand(3, n, *cfg.size, generator=g) * 2 - 1


_STOP = -1


def two_device_worker(cfg: TwoDeviceConfig, *, timeout_s: float = 60.0) -> dict | None:
    """Rank 0 captures/encodes/sends, rank 1 receives/decodes/plays out; returns the merged record on
    rank 0 (None on rank 1). Needs an initialised 2-rank process group (see vaestudy.distributed)."""


    cfg.validate()
    rank, world = dist.get_rank(), dist.get_world_size()
    if world != 2:
        raise ValueError(f"two-device needs exactly 2 ranks, got world size {world}")
    torch.set_num_threads(cfg.threads)
    dev = torch.device("cuda", rank) if dist.get_backend() == "nccl" else torch.device("cpu")
    vae = load_vae(cfg.model, cfg.weights, seed=cfg.seed, device=dev)
    fam = family_of(vae)
    lat_shape = (1, *fam.latent_shape(cfg.window, *cfg.size))
    dist.barrier()
    inject_failure(cfg.fail_rank, cfg.fail_mode, timeout_s)
    t_start = now()
    if rank == 0:
        part = _sender(cfg, vae, dev, lat_shape, timeout_s)
    else:
        part = _receiver(cfg, vae, dev, lat_shape, timeout_s)
    part["rank"] = rank
    part["t_start"] = t_start
    parts: list = [None, None]
    dist.all_gather_object(parts, part)
    if rank != 0:
        return None
    return summarize_two_device(cfg, parts[0], parts[1], lat_shape)


def _comm_device(dev: torch.device) -> torch.device:
    """Where point-to-point tensors must live: the GPU for NCCL, the CPU for gloo."""

    return dev if dist.get_backend() == "nccl" else torch.device("cpu")


def _sender(cfg: TwoDeviceConfig, vae, dev, lat_shape, timeout_s: float) -> dict:

    comm = _comm_device(dev)

    frames = capture_frames(cfg)
    wq = BoundedQueue(cfg.window_queue, "drop", "window buffer")
    sq = BoundedQueue(cfg.send_queue, cfg.send_policy, "send queue")
    capture_ts: list[float] = []
    encode_log: list[dict] = []
    send_log: list[dict] = []
    errors: list[BaseException] = []
    t0 = now() + 0.05

    def capture():  # a camera: one frame every 1/fps, never waits for the encoder
        try:
            stamps = []
            for i in range(frames.shape[1]):
                target = t0 + i / cfg.fps
                time.sleep(max(0.0, target - now()))
                stamps.append(now())
                capture_ts.append(stamps[-1])
                if len(stamps) == cfg.window:
                    wq.put(list(stamps), key=i // cfg.window)
                    stamps = []
            _force_stop(wq, timeout_s)
        except BaseException as exc:
            errors.append(exc)

    def sender():
        try:
            while True:
                key, item = sq.get(timeout=timeout_s)
                if key == _STOP:
                    dist.send(torch.tensor([_STOP, 0], dtype=torch.int64, device=comm), dst=1)
                    return
                z, stamps = item
                a = now()
                dist.send(torch.tensor([key, 0], dtype=torch.int64, device=comm), dst=1)
                dist.send(torch.tensor(stamps, dtype=torch.float64, device=comm), dst=1)
                dist.send(z.contiguous(), dst=1)
                send_log.append({"window": key, "start": a, "end": now(), "bytes": z.numel() * z.element_size()})
        except BaseException as exc:
            errors.append(exc)

    cap = threading.Thread(target=capture, name="capture", daemon=True)
    snd = threading.Thread(target=sender, name="sender", daemon=True)
    cap.start()
    snd.start()
    while True:
        key, item = wq.get(timeout=timeout_s)
        if key == _STOP:
            break
        stamps = item
        idx = slice(key * cfg.window, (key + 1) * cfg.window)
        x = frames[:, idx].unsqueeze(0).to(dev)
        a = now()
        with torch.no_grad():
            z = encode_clip(vae, x)
        if cfg.encode_delay_s:
            time.sleep(cfg.encode_delay_s)
        synchronize(dev)
        b = now()
        encode_log.append({"window": key, "start": a, "end": b})
        sq.put((z.to(comm).float(), stamps), key=key, timeout=timeout_s)
        if errors:
            raise RuntimeError(f"sender thread failed: {errors[0]!r}") from errors[0]
    _force_stop(sq, timeout_s)
    snd.join(timeout_s)
    cap.join(timeout_s)
    if errors:
        raise RuntimeError(f"sender thread failed: {errors[0]!r}") from errors[0]
    return {"capture_ts": capture_ts, "encode": encode_log, "send": send_log, "queues": [wq.summary(), sq.summary()],
            "t0": t0}


def _force_stop(q: BoundedQueue, timeout_s: float | None = None) -> None:
    """Queue the end marker, waiting for room even under a drop policy (it must never be dropped)."""
    q.put_marker((_STOP, None), timeout_s)


def _receiver(cfg: TwoDeviceConfig, vae, dev, lat_shape, timeout_s: float) -> dict:

    comm = _comm_device(dev)

    rq = BoundedQueue(cfg.recv_queue, "block", "receive queue")
    ring_cap = cfg.ring_frames or 3 * cfg.window
    ring = FrameRing(ring_cap)
    recv_log: list[dict] = []
    decode_log: list[dict] = []
    shown: list[dict] = []
    underruns: list[float] = []
    errors: list[BaseException] = []
    finished = threading.Event()
    first_frame = threading.Event()
    fam = family_of(vae)

    def receiver():
        try:
            while True:
                head = torch.empty(2, dtype=torch.int64, device=comm)
                dist.recv(head, src=0)
                w = int(head[0])
                if w == _STOP:
                    rq.put(None, key=_STOP, timeout=timeout_s)
                    return
                stamps = torch.empty(cfg.window, dtype=torch.float64, device=comm)
                dist.recv(stamps, src=0)
                z = torch.empty(lat_shape, dtype=torch.float32, device=comm)
                dist.recv(z, src=0)
                recv_log.append({"window": w, "end": now()})
                rq.put((z, stamps.cpu().tolist()), key=w, timeout=timeout_s)
        except BaseException as exc:
            errors.append(exc)
            rq.put_marker((_STOP, None), wait_for_room=False)  # wake the decoder: it must not wait forever

    def consumer():  # the display: one frame every 1/fps once playback has started
        first_frame.wait()
        start = now() + cfg.prebuffer_s
        k = 0
        while True:
            target = start + k / cfg.fps
            time.sleep(max(0.0, target - now()))
            item = ring.pop()
            t = now()
            if item is None:
                if finished.is_set():
                    return
                underruns.append(t)
            else:
                item["shown"] = t
                shown.append(item)
            k += 1

    rcv = threading.Thread(target=receiver, name="receiver", daemon=True)
    con = threading.Thread(target=consumer, name="consumer", daemon=True)
    rcv.start()
    con.start()
    while True:
        key, item = rq.get(timeout=timeout_s)
        if key == _STOP:
            break
        z, stamps = item
        z = z.to(device=dev, dtype=next(vae.parameters()).dtype)
        stream = open_pipeline_stream(vae)  # each window is an independent clip: a fresh stream
        a = now()
        n = 0
        first_out = None
        with torch.no_grad():
            for lo, hi in stream_plan(fam, int(z.shape[2])):
                out = stream.step(z[:, :, lo:hi])
                synchronize(dev)
                if first_out is None:
                    first_out = now()
                for j in range(out.shape[2]):
                    ring.push({"window": key, "frame": n, "captured": stamps[n], "ready": now()}, timeout=timeout_s)
                    n += 1
                first_frame.set()
        if cfg.decode_delay_s:
            time.sleep(cfg.decode_delay_s)
        decode_log.append({"window": key, "start": a, "first_frame": first_out, "end": now()})
        if errors:
            break
    finished.set()
    first_frame.set()
    con.join(timeout_s + cfg.window * cfg.windows / cfg.fps)
    rcv.join(timeout_s)
    if errors:
        raise RuntimeError(f"receiver thread failed: {errors[0]!r}") from errors[0]
    return {"recv": recv_log, "decode": decode_log, "shown": shown, "underruns": underruns,
            "queues": [rq.summary(), ring.q.summary()], "ring_frames": ring_cap}


def summarize_two_device(cfg: TwoDeviceConfig, tx: dict, rx: dict, lat_shape) -> dict:
    """Merge both ranks' logs: per-window stage times, per-frame latency, queues, budget formula."""

    t0 = tx["t0"]
    enc = {e["window"]: e for e in tx["encode"]}
    snd = {s["window"]: s for s in tx["send"]}
    rcv = {r["window"]: r for r in rx["recv"]}
    dec = {d["window"]: d for d in rx["decode"]}
    windows = []
    for w in sorted(dec):
        windows.append({
            "window": w,
            "filled": tx["capture_ts"][(w + 1) * cfg.window - 1] - t0,
            "encode_s": enc[w]["end"] - enc[w]["start"],
            "queued_send_s": snd[w]["start"] - enc[w]["end"],
            "transfer_s": rcv[w]["end"] - snd[w]["start"],
            "queued_recv_s": dec[w]["start"] - rcv[w]["end"],
            "decode_s": dec[w]["end"] - dec[w]["start"],
            "decode_first_s": dec[w]["first_frame"] - dec[w]["start"],
        })
    frames = [{"window": f["window"], "frame": f["frame"], "captured": f["captured"] - t0, "shown": f["shown"] - t0,
               "latency_s": f["shown"] - f["captured"], "waited_s": f["shown"] - f["ready"]} for f in rx["shown"]]
    med = lambda xs: statistics.median(xs) if xs else math.nan  # noqa: E731
    enc_s = med([w["encode_s"] for w in windows])
    dec_s = med([w["decode_s"] for w in windows])
    dec_first = med([w["decode_first_s"] for w in windows])
    xfer = med([w["transfer_s"] for w in windows])
    nbytes = C.window_bytes_continuous(lat_shape, "fp32")
    # compression.latency_budget models transfer as bytes over a link; we measured it, so it enters as
    # the round-trip term with nbytes=0 (the 003 formula: fill + encode + transfer + decode)
    budget = C.latency_budget(cfg.window, cfg.fps, enc_s, dec_s, nbytes=0.0, rtt_s=xfer, playout_s=cfg.prebuffer_s)
    first_frames = [f for f in frames if f["frame"] == 0]
    queues = {q["name"]: q for q in tx["queues"] + rx["queues"]}
    for q in queues.values():
        q["log"] = [(t - t0, d) for t, d in q["log"]]
    return {
        "config": asdict(cfg),
        "latent_shape": list(lat_shape),
        "window_bytes": nbytes,
        "windows": windows,
        "frames": frames,
        "queues": queues,
        "underruns": len(rx["underruns"]),
        "underrun_times": [t - t0 for t in rx["underruns"]],
        "captured_windows": len(tx["capture_ts"]) // cfg.window,
        "dropped_windows": sorted(queues["window buffer"]["dropped_ids"] + queues["send queue"]["dropped_ids"]),
        "shown_frames": len(frames),
        "median": {"encode_s": enc_s, "decode_s": dec_s, "decode_first_frame_s": dec_first, "transfer_s": xfer},
        "budget": budget.as_dict(),
        "budget_first_frame_decode": C.latency_budget(cfg.window, cfg.fps, enc_s, dec_first, nbytes=0.0, rtt_s=xfer,
                                                      playout_s=cfg.prebuffer_s).as_dict(),
        "latency_first_frame_s": [f["latency_s"] for f in first_frames],
        "latency_all_s": [f["latency_s"] for f in frames],
        "throughput_fps": C.pipeline_throughput_fps(cfg.window, [enc_s, xfer, dec_s]),
        "clock": "CLOCK_MONOTONIC, one machine",
    }


def contention_from(row: dict) -> float:
    """The contention factor an :func:`overlap_sweep` row implies: how much of the decode still
    lengthened the overlapped period, (T_ovl - max(G, D)) / min(G, D), clipped to [0, 1]
    (0 = perfectly hidden, 1 = nothing hidden)."""
    g, d = row["G_s"] + row.get("R_s", 0.0), row["D_s"]
    lo, hi = min(g, d), max(g, d)
    return float(min(1.0, max(0.0, (row["ovl_period_s"] - hi) / lo))) if lo > 0 else math.nan


def ceiling_grid(decode_share: float, decode_plus_recompute: float, n: int = 21) -> dict:
    """Gain of :func:`scope_ceiling` (with these shares of a chunk's time) over critical share x contention in
    [0, 1]^2 (n x n)."""
    xs = [i / (n - 1) for i in range(n)]
    gain = [[scope_ceiling(decode_share, decode_plus_recompute, critical=c, contention=k)["gain"] for c in xs]
            for k in xs]
    return {"critical": xs, "contention": xs, "gain": gain}
