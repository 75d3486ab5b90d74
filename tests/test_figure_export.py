"""Saved figures are reproducible: the same figure saves to the same bytes, so `make report` leaves figures/ unchanged
in git when nothing changed (the report's own export through the inline backend: tests/test_report.py)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from vaestudy import plots  # noqa: E402


def _figure():
    fig, (a, b) = plt.subplots(1, 2, figsize=(4, 2))
    a.plot([0, 1, 4, 9], label="line")  # clipped to the axes: a clip path whose id used to be random
    a.legend()
    b.imshow([[0.0, 1.0], [1.0, 0.5]])  # an embedded image with an id of its own
    fig.suptitle("stable bytes")
    return fig


def test_saving_the_same_figure_twice_gives_identical_bytes(tmp_path):
    fig = _figure()
    first = plots.save(fig, "fig", tmp_path / "a", formats=("png", "svg", "pdf"))
    second = plots.save(fig, "fig", tmp_path / "b", formats=("png", "svg", "pdf"))
    plt.close(fig)
    assert [p.name for p in first] == ["fig.png", "fig.svg", "fig.pdf"]
    for p, q in zip(first, second):
        assert p.read_bytes() == q.read_bytes(), f"{p.name} differs between two saves of one figure"
    svg = first[1].read_text()
    assert "clip-path" in svg and "<dc:date>" not in svg  # ids exist and are fixed; no date is recorded
    assert b"/CreationDate" not in first[2].read_bytes()


def test_a_plain_savefig_differs_so_the_test_above_can_fail(tmp_path):
    """Without the fixed salt matplotlib draws random SVG ids: the property above is not automatic."""
    fig = _figure()
    with matplotlib.rc_context({"svg.hashsalt": None}):
        fig.savefig(tmp_path / "1.svg")
        fig.savefig(tmp_path / "2.svg")
    plt.close(fig)
    assert (tmp_path / "1.svg").read_bytes() != (tmp_path / "2.svg").read_bytes()


def test_save_defaults_to_png_and_svg_and_rejects_unknown_formats(tmp_path):
    fig = _figure()
    assert [p.name for p in plots.save(fig, "x", tmp_path)] == ["x.png", "x.svg"]
    for bad in (("jpeg",), "png", ()):
        with pytest.raises(ValueError, match=r"formats=.*one or more of \('png', 'svg', 'pdf'\)"):
            plots.save(fig, "x", tmp_path, formats=bad)
    plt.close(fig)
