"""The report builder on two throw-away notebooks: one good, one that fails."""

import nbformat as nbf

from vaestudy.report import build_report


def _nb(path, cells):
    nb = nbf.v4.new_notebook()
    params = nbf.v4.new_code_cell("FAST = False\nMODEL = 'none'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbf.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbf.write(nb, path)


def test_report_renders_pages_and_names_the_failing_cell(tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    _nb(tmp_path / "notebooks" / "01_good.ipynb", [
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n%matplotlib inline",
        "print('FAST is', FAST, 'MODEL is', MODEL)\nplt.plot([0, 1]); plt.show()",
    ])
    _nb(tmp_path / "notebooks" / "02_bad.ipynb", ["x = 1", "raise RuntimeError('boom')"])
    code = build_report(root=tmp_path, fast=True, model="wan2.1")
    out = capsys.readouterr().out
    assert code == 1
    assert "02_bad.ipynb: FAILED in cell [" in out and "boom" in out
    good = (tmp_path / "reports" / "01_good.html").read_text()
    assert "FAST is True MODEL is wan2.1" in good  # parameters reached the notebook
    assert (tmp_path / "reports" / "02_bad.html").exists()  # the failed page is still rendered
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "01_good" in index and "FAILED" in index and "torch" in index
    assert list((tmp_path / "figures").glob("01_good_*.png"))
