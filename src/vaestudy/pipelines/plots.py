"""Figures for the pipeline records (notebook 06): Gantt timelines, queue depths, per-frame latency,
seam error against halo size. Each function draws on a given matplotlib Axes and returns it."""

from __future__ import annotations

import numpy as np

LANE_COLORS = {"generate": "#1f77b4", "recompute": "#ff7f0e", "decode": "#2ca02c"}
QUEUE_COLORS = {"window buffer": "#7f7f7f", "send queue": "#1f77b4", "receive queue": "#9467bd",
                "output ring": "#2ca02c"}


def gantt(ax, spans: list[dict], *, title: str = "", row: float = 0.0, label_prefix: str = ""):
    """One row per lane (generate / recompute / decode), a bar per chunk (seconds -> ms)."""
    lanes = [lane for lane in ("generate", "recompute", "decode") if any(s["lane"] == lane for s in spans)]
    for k, lane in enumerate(lanes):
        y = row + k
        bars = [(s["start"] * 1e3, (s["end"] - s["start"]) * 1e3) for s in spans if s["lane"] == lane]
        ax.broken_barh(bars, (y - 0.38, 0.76), color=LANE_COLORS[lane], alpha=0.85)
        for s in spans:
            if s["lane"] == lane and (s["end"] - s["start"]) > 0:
                ax.text((s["start"] + s["end"]) / 2 * 1e3, y, str(s["chunk"]), ha="center", va="center",
                        fontsize=7, color="white")
    ax.set_yticks([row + k for k in range(len(lanes))], [f"{label_prefix}{lane}" for lane in lanes])
    ax.set_xlabel("time since start (ms)")
    if title:
        ax.set_title(title)
    return ax


def queue_depths(ax, rec: dict, *, title: str = ""):
    """Depth of every queue of a two-device record over time, with drops and underruns marked."""
    top = 1
    for name, q in rec["queues"].items():
        if not q["log"]:
            continue
        t, d = zip(*q["log"])
        top = max(top, *d)
        ax.step(t, d, where="post", color=QUEUE_COLORS.get(name), label=f"{name} (cap {q['capacity']}, {q['policy']})")
    for t in rec.get("underrun_times", []):
        ax.axvline(t, color="#d62728", alpha=0.25, lw=1)
    ax.set_xlabel("time since capture start (s)")
    ax.set_ylabel("depth (windows; ring: frames)")
    ax.set_ylim(0, top * 1.9)  # headroom: the legend sits above the deepest queue, never over the data
    ax.legend(fontsize=7, loc="upper right")
    if title:
        ax.set_title(title)
    return ax


def frame_latency(ax, rec: dict, *, label: str = "", budget: float | None = None):
    """End-to-end latency of every shown frame against its capture time; the budget as a line."""
    f = rec["frames"]
    ax.plot([x["captured"] for x in f], [x["latency_s"] * 1e3 for x in f], ".", label=label or None, ms=4)
    if budget is not None:
        ax.axhline(budget * 1e3, ls="--", color="k", lw=1)
    ax.set_xlabel("capture time (s)")
    ax.set_ylabel("capture -> display (ms)")
    return ax


def halo_sweep(ax_err, ax_time, rows: list[dict], *, lightx2v_halo: int = 2):
    """Seam error (max and near-seam mean, log scale) and split-decode speed-up against halo size."""
    x = np.arange(len(rows))
    labels = [f"{r['halo_label']}\n({r['halo']})" if r["halo_label"] != str(r["halo"]) else str(r["halo"]) for r in rows]
    floor = 1e-8
    ax_err.semilogy(x, [max(r["max_abs"], floor) for r in rows], "o-", label="max |error|")
    ax_err.semilogy(x, [max(r["seam_band_mean_abs"], floor) for r in rows], "s-", label="mean |error|, 8 px at the seam")
    ax_err.axhline(2 / 255, color="grey", ls=":", lw=1, label="one 8-bit level")
    for i, r in enumerate(rows):
        if r["halo_label"] == str(lightx2v_halo):
            ax_err.axvline(i, color="#ff7f0e", alpha=0.3, lw=6, label="public multi-GPU halo (2)")
    ax_err.set_xticks(x, labels)
    ax_err.set_xlabel("halo (latent columns)")
    ax_err.set_ylabel("error vs one-process decode ([-1, 1] units)")
    ax_err.legend(fontsize=7)
    ax_time.bar(x, [r["speedup"] for r in rows], color="#9467bd")
    ax_time.axhline(1, color="k", lw=1)
    ax_time.set_xticks(x, labels)
    ax_time.set_xlabel("halo (latent columns)")
    ax_time.set_ylabel("speed-up vs one process")
    return ax_err, ax_time
