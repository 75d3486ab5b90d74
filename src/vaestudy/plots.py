"""One figure style for every notebook, and the few plotting helpers they share."""

from __future__ import annotations

from pathlib import Path

import matplotlib

STRATEGY_COLORS = {
    "full": "#1b1b1b",
    "single-pass": "#7f7f7f",
    "tiled": "#1f77b4",
    "diffusers-tiled": "#17becf",
    "chunked": "#2ca02c",
    "chunked-naive": "#d62728",
    "chunked-window": "#ff7f0e",
    "tiled+chunked": "#9467bd",
}

WEIGHT_LABELS = {
    "random": "random weights (real config): latency/memory meaningful, quality not",
    "tiny": "tiny random config: exactness and shapes only",
    "embedded": "embedded tiny model trained in-project on real clips",
    "pretrained": "pretrained hub weights",
}


def use_style() -> None:
    """Apply the house style (size, DPI, fonts, grid) to matplotlib."""
    matplotlib.rcParams.update({
        "figure.figsize": (7.0, 4.0),
        "figure.dpi": 110,
        "savefig.dpi": 150,
        "savefig.bbox": "tight",
        "font.size": 10,
        "axes.titlesize": 10,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
    })
    _inline_formats()


FIGURE_FORMATS_ENV = "VAESTUDY_FIGURE_FORMATS"

# Saved figures are byte-for-byte reproducible, so a report run that changes nothing leaves figures/ unchanged in git:
# SVG ids (clip paths, glyphs) are hashed with this salt instead of a random one, and no file records its creation
# date (SVG and PDF would; PNG has none). matplotlib takes `metadata` per format and rejects it for others (JPEG).
SVG_HASHSALT = "vaestudy"
STABLE_METADATA = {"png": {}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}


def stable_output() -> None:
    """Fix matplotlib's SVG id salt (``svg.hashsalt``), so the same figure saves to the same SVG bytes."""
    matplotlib.rcParams["svg.hashsalt"] = SVG_HASHSALT


def _inline_formats() -> None:
    """Inside an IPython kernel, emit inline figures in the formats of $VAESTUDY_FIGURE_FORMATS (e.g. "png,svg").

    ``vaestudy report`` sets it so every figure is stored as PNG and SVG, without a date and with fixed SVG ids
    (``report`` writes them into figures/); unset, the inline default (PNG) stays.
    """
    import os

    formats = [f.strip() for f in os.environ.get(FIGURE_FORMATS_ENV, "").split(",") if f.strip()]
    if not formats:
        return
    try:
        from IPython import get_ipython
    except ImportError:
        return
    if get_ipython() is None:  # plain Python: no inline backend to configure
        return
    from matplotlib_inline.backend_inline import set_matplotlib_formats
    from matplotlib_inline.config import InlineBackend

    stable_output()
    inline = InlineBackend.instance()  # both kept if the inline backend is (re)activated later
    inline.figure_formats = set(formats)
    if set(formats) <= {"png", "retina", "svg"}:  # one metadata for every format: only where all accept it
        inline.print_figure_kwargs = {**inline.print_figure_kwargs, "metadata": {"Date": None}}
    set_matplotlib_formats(*formats)


def color(strategy: str) -> str:
    return STRATEGY_COLORS.get(strategy, "#8c564b")


def weights_note(weights: str) -> str:
    """The caption every quality figure carries about its weights."""
    return WEIGHT_LABELS.get(weights, weights)


def title(what: str, *, model: str, weights: str, device: str = "cpu") -> str:
    """A title that says what was measured, on which device, model and weights."""
    return f"{what}\n{model} · {weights} weights · {device}"


def save(fig, name: str, folder: str | Path = "figures", formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Save a figure into ``folder`` as NAME.png and NAME.svg (or ``formats``: png, svg, pdf); returns the paths.

    The bytes depend on the figure only (no date, fixed SVG ids): saving an unchanged figure again changes no file.
    """
    if isinstance(formats, str) or not formats or any(f not in STABLE_METADATA for f in formats):
        raise ValueError(f"formats={formats!r}: give a tuple of one or more of {tuple(STABLE_METADATA)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.{fmt}" for fmt in formats]
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT}):
        for p, fmt in zip(paths, formats):
            fig.savefig(p, format=fmt, metadata=STABLE_METADATA[fmt])
    return paths
