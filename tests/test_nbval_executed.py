"""tests/nbval_executed.py: nbval's runs are kept as executed notebooks, and their readers run after them."""
from __future__ import annotations

import nbformat
import pytest


def _notebook(path, cells: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"), *[nbformat.v4.new_code_cell(c) for c in cells]]
    nb.metadata["kernelspec"] = {"name": "churnlib", "display_name": "Python (churnlib)", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.slow
def test_nbval_runs_are_kept_with_outputs_and_read_after_the_notebooks(pytester: pytest.Pytester, monkeypatch):
    out = pytester.path / "out"
    monkeypatch.setenv("CHURNLIB_OUTPUT_DIR", str(out))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # kernels draw inline, as under `make report`
    # named so that collection meets them after the reader: the plugin must move the reader
    _notebook(pytester.path / "z1_ok.ipynb", [
        "print('kept-' + 'marker')",
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(); ax.plot([1, 2, 3]);",
        "6 * 7",
    ])
    _notebook(pytester.path / "z2_fail.ipynb", ["x = 1", "raise ValueError('boom-' + 'marker')", "print('after')"])
    pytester.makepyfile(test_reader="""
        def test_reader_sees_both_notebooks(nbval_executed):
            assert sorted(nbval_executed) == ["z1_ok.ipynb", "z2_fail.ipynb"]
            assert nbval_executed["z1_ok.ipynb"].passed and not nbval_executed["z2_fail.ipynb"].passed
            assert nbval_executed["z1_ok.ipynb"].seconds > 0
            assert nbval_executed["z2_fail.ipynb"].problems == ["Cell 1: ValueError: boom-marker"]
    """)
    pytester.makepyfile(test_other="def test_unrelated(): pass")
    result = pytester.runpytest("-p", "tests.nbval_executed", "--nbval-lax", "--nbval-kernel-name", "churnlib",
                                "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=7, failed=1)  # 3 + 2 cells, the reader, another test; one cell fails
    order = [line.split()[0] for line in result.outlines if line.rstrip().endswith("%]")]
    assert order[-1] == "test_reader.py::test_reader_sees_both_notebooks"  # after every notebook cell...
    assert order[0] == "test_other.py::test_unrelated"  # ...while the other tests keep their place

    ok = nbformat.read(out / "reports" / "executed" / "z1_ok.ipynb", as_version=4)
    nbformat.validate(ok)
    cells = [c for c in ok.cells if c.cell_type == "code"]
    assert [c.execution_count for c in cells] == [1, 2, 3]
    assert cells[0].outputs[0].text == "kept-marker\n"
    assert any("image/png" in o.get("data", {}) for o in cells[1].outputs)  # the figure, inline
    assert cells[2].outputs[0].data["text/plain"] == "42" and cells[2].outputs[0].execution_count == 3

    failed = nbformat.read(out / "reports" / "executed" / "z2_fail.ipynb", as_version=4)
    error = [o for c in failed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert error and error[0].ename == "ValueError" and "boom-marker" in error[0].evalue
