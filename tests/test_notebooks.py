"""The notebooks, executed by `marketlib report` in a real Jupyter kernel against the snapshot."""

import hashlib
import subprocess
import sys

import nbformat
import pytest
from conftest import REPO

from marketlib import notebook, report
from marketlib.errors import MarketlibError, NotebookError
from marketlib.report import notebook_paths, summary

NOTEBOOKS = notebook_paths()
PROMISED = [
    "01_price_paths",
    "02_waterfall_one_day",
    "02_venue_timing",
    "03_verdict_heatmap_net",
    "03_verdict_heatmap_gross_losses",
    "03_cumulative_change",
    "04_recovery",
    "05_car_paths",
    "05_group_significance",
]


def test_the_five_numbered_notebooks_exist_with_a_parameters_cell():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_universe_and_data",
        "02_the_january_27_drawdown",
        "03_the_1_5_trillion_claim",
        "04_recovery",
        "05_event_study",
    ]
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and 'source = "snapshot"' in tagged[0].source


def test_committed_notebooks_carry_no_outputs():
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


def test_notebook_cells_stay_short_and_define_no_functions():
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert "def " not in cell.source and len(cell.source.splitlines()) <= 12, path.name


def _report(out):
    return subprocess.run(
        [sys.executable, "-m", "marketlib", "report", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def two_reports(tmp_path_factory):
    first, second = tmp_path_factory.mktemp("report1"), tmp_path_factory.mktemp("report2")
    return (first, _report(first)), (second, _report(second))


@pytest.mark.notebook
def test_report_executes_every_notebook_and_writes_the_promised_figures(two_reports):
    (out, result), _ = two_reports
    assert result.returncode == 0, result.stderr[-3000:]
    for path in NOTEBOOKS:
        executed = nbformat.read(out / "reports" / "executed" / path.name, as_version=4)
        errors = [
            o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"
        ]
        assert errors == []
        assert (out / "reports" / f"{path.stem}.html").stat().st_size > 10_000
    for name in PROMISED:
        png = out / "figures" / f"{name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000, name
        assert (out / "figures" / f"{name}.svg").stat().st_size > 0
    index = (out / "reports" / "index.html").read_text()
    assert all(f"{p.stem}.html" in index for p in NOTEBOOKS)
    verdict = summary(out / "reports" / "executed" / "03_the_1_5_trillion_claim.ipynb")
    assert "of 24 definitions" in verdict and verdict.strip() in result.stdout


@pytest.mark.notebook
def test_two_report_runs_give_byte_identical_figures(two_reports):
    (first, one), (second, two) = two_reports
    assert one.returncode == two.returncode == 0

    def digests(folder):
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (folder / "figures").iterdir()
        }

    assert digests(first) == digests(second) and len(digests(first)) == 2 * len(PROMISED)


def test_committed_figures_match_a_fresh_run(two_reports):
    (out, _), _ = two_reports
    for name in PROMISED:
        committed = REPO / "figures" / f"{name}.png"
        assert committed.read_bytes() == (out / "figures" / f"{name}.png").read_bytes(), name


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"universe": 5}, "universe=5"),
        ({"event_date": "27/01/2025"}, "27/01/2025"),
        ({"source": "bloomberg"}, "bloomberg"),
        ({"universe": "nonsense"}, "nonsense"),
        ({"base_date": "2025-02-01"}, "before event_date"),
    ],
)
def test_a_wrong_notebook_parameter_is_a_typed_error(override, needle, tmp_path):
    params = {
        "event_date": "2025-01-27",
        "base_date": "2025-01-24",
        "universe": "named",
        "source": "snapshot",
        "figures_dir": str(tmp_path),
    } | override
    with pytest.raises(MarketlibError, match=needle):
        notebook.check_parameters(**params)


@pytest.mark.notebook
def test_a_failing_notebook_is_a_typed_error_naming_the_notebook_and_cell(tmp_path):
    failing = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("x = 1"),
            nbformat.v4.new_code_cell("from marketlib import load_prices\nload_prices('NOPE')"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    path = tmp_path / "99_failing.ipynb"
    nbformat.write(failing, path)
    (tmp_path / "executed").mkdir()
    with pytest.raises(NotebookError, match=r"99_failing\.ipynb failed in cell 2: Unknown"):
        report._execute_and_render(path, tmp_path / "executed", tmp_path, {})
    assert (tmp_path / "executed" / "99_failing.ipynb").exists()
    assert not (tmp_path / "99_failing.html").exists()
