"""The notebooks, executed in a real Jupyter kernel against the snapshot: by `marketlib report`
for both bundled studies, and by papermill with a study whose groups differ."""

import re

import nbformat
import pandas as pd
import psutil
import pytest
from conftest import REPO, REPORT_KERNELS, STUDIES, USER_STUDY, write_users_study

from marketlib import report
from marketlib.errors import MarketlibError, NotebookError
from marketlib.notebook import check_parameters
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


def test_the_five_generic_notebooks_exist_with_the_same_parameters_cell():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_universe_and_data",
        "02_the_event_day",
        "03_the_claims",
        "04_recovery",
        "05_event_study",
    ]
    cells = []
    for path in NOTEBOOKS:
        tagged = [
            c
            for c in nbformat.read(path, as_version=4).cells
            if "parameters" in c.metadata.get("tags", [])
        ]
        assert len(tagged) == 1
        cells.append(tagged[0].source)
    assert len(set(cells)) == 1 and 'study = "' in cells[0] and 'source = "snapshot"' in cells[0]


def test_committed_notebooks_carry_no_outputs_and_name_no_case():
    for path in NOTEBOOKS:
        text = path.read_text("utf-8")
        for word in ("2025-", "named", "megacap", "mag7", "SFTBY", "R1"):
            assert word not in text.replace('study = "deepseek"', ""), (path.name, word)
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


def test_notebook_cells_stay_short_and_define_no_functions():
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert "def " not in cell.source and len(cell.source.splitlines()) <= 12, path.name


@pytest.mark.notebook
@pytest.mark.parametrize("study", STUDIES)
def test_report_executes_every_notebook_and_writes_every_figure(reports, study):
    out, result = reports
    assert result.returncode == 0, result.stderr[-3000:]
    for path in NOTEBOOKS:
        executed = nbformat.read(out / "reports" / study / "executed" / path.name, as_version=4)
        errors = [
            o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"
        ]
        assert errors == []
    for name in PROMISED:
        png = out / "figures" / study / f"{name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000, name
    # each figure drawn once: one file per chart, no second format
    assert sorted(p.name for p in (out / "figures" / study).iterdir()) == sorted(
        f"{name}.png" for name in PROMISED
    )
    verdict = summary(out / "reports" / study / "executed" / "03_the_claims.ipynb")
    assert verdict.startswith("The strictest reading") and verdict.strip() in result.stdout


@pytest.mark.notebook
@pytest.mark.parametrize("study", [*STUDIES, "regrouped"])
def test_executed_notebooks_state_the_published_folders_not_the_staging_one(reports, study):
    out, _ = reports
    executed = out / "reports" / study / "executed"
    for path in NOTEBOOKS:
        book = nbformat.read(executed / path.name, as_version=4)
        stated = book.metadata.papermill.parameters
        # run again from executed/, the notebook opens the same study and draws where the
        # report published its figures
        if study == "regrouped":  # a user's study file, beside the report folders
            assert (executed / stated["study"]).resolve() == (out / "regrouped.toml").resolve()
        else:
            assert stated["study"] == study
        assert (executed / stated["figures_dir"]).resolve() == (out / "figures" / study).resolve()
        (injected,) = [c for c in book.cells if "injected-parameters" in c.metadata.tags]
        assert f'figures_dir = "{stated["figures_dir"]}"' in injected.source, path.name
        assert ".executing" not in nbformat.writes(book), path.name
    assert not (out / "reports" / study / ".executing").exists()


@pytest.mark.notebook
def test_the_two_studies_give_different_outputs(reports):
    out, _ = reports
    deepseek = summary(out / "reports" / "deepseek" / "executed" / "03_the_claims.ipynb")
    tariffs = summary(out / "reports" / "tariffs-2025" / "executed" / "03_the_claims.ipynb")
    assert "Of 84 definitions" in deepseek and "$1.50 trillion claimed" in deepseek
    assert "$2.10 trillion claimed" in tariffs and "Of 84 definitions" not in tariffs
    for name in PROMISED:
        one = (out / "figures" / "deepseek" / f"{name}.png").read_bytes()
        assert one != (out / "figures" / "tariffs-2025" / f"{name}.png").read_bytes(), name


@pytest.mark.notebook
@pytest.mark.parametrize("study", STUDIES)
def test_committed_figures_match_a_fresh_run(reports, study):
    out, _ = reports
    for name in PROMISED:
        committed = REPO / "figures" / study / f"{name}.png"
        assert committed.read_bytes() == (out / "figures" / study / f"{name}.png").read_bytes()


@pytest.mark.notebook
def test_a_study_with_other_groups_changes_what_every_notebook_shows(reports):
    out, run = reports
    assert run.returncode == 0, run.stderr[-3000:]

    def shown(study, name):
        book = nbformat.read(out / "reports" / study / "executed" / f"{name}.ipynb", 4)
        return "".join(
            str(o.get("data", {}).get("text/html", "")) + str(o.get("text", ""))
            for c in book.cells for o in c.get("outputs", [])
        )  # fmt: skip

    for path in NOTEBOOKS:
        assert shown("regrouped", path.stem) != shown("deepseek", path.stem), path.stem
    # the named group is Nvidia and Broadcom now: the event day's table says so
    event_day = shown("regrouped", "02_the_event_day").lower()
    assert "broadcom" in event_day and "oracle" not in event_day
    for name in PROMISED:
        if name.startswith(("02_waterfall", "03_", "05_car")):
            regrouped = (out / "figures" / "regrouped" / f"{name}.png").read_bytes()
            assert regrouped != (out / "figures" / "deepseek" / f"{name}.png").read_bytes(), name


@pytest.mark.notebook
def test_a_parameter_the_notebooks_do_not_take_is_refused_in_the_kernel(tmp_path):
    import papermill  # in the test: collection on every worker would import it

    with pytest.raises(papermill.PapermillExecutionError, match="'universe' is not one"):
        papermill.execute_notebook(
            str(REPO / "notebooks" / "01_universe_and_data.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters={"universe": "megacap_tech", "figures_dir": str(tmp_path)},
            kernel_name="python3",
            progress_bar=False,
        )


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"study": 5}, "study=5"),
        ({"source": "bloomberg"}, "bloomberg"),
        ({"study": "nonsense"}, "nonsense"),
        ({"event_date": "2025-04-03"}, "'event_date' is not one"),
    ],
)
def test_a_wrong_notebook_parameter_is_a_typed_error(override, needle, tmp_path):
    params = {"study": "deepseek", "source": "snapshot", "figures_dir": str(tmp_path)} | override
    with pytest.raises(MarketlibError, match=needle):
        check_parameters(params)


@pytest.mark.notebook
def test_a_failing_notebook_is_a_typed_error_and_its_kernel_starts_the_next_one_afresh(tmp_path):
    def book(*sources):
        return nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(source) for source in sources],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        )

    said = "from marketlib import notebook\nnotebook._route_logging()\n"
    said += "import logging\nlogging.getLogger('marketlib.test').warning('said by %s', {!r})"
    nbformat.write(
        book(
            "import os\nx = 1\nprint(os.getpid())",
            said.format("the failing one"),
            "from marketlib import load_prices\nload_prices('NOPE')",
        ),
        tmp_path / "99_failing.ipynb",
    )
    nbformat.write(
        book(
            "import os\nprint(os.getpid())",
            "print('x' in globals(), os.getcwd(), os.environ['MARKETLIB_LOG_FILE'])",
            said.format("the next one"),
        ),
        tmp_path / "98_next.ipynb",
    )
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    with report._Kernels(tmp_path) as kernels:
        with pytest.raises(NotebookError, match=r"99_failing\.ipynb failed in cell 3: Unknown"):
            report._execute(tmp_path / "99_failing.ipynb", first, {}, kernels, first / "log")
        after = report._execute(tmp_path / "98_next.ipynb", second, {}, kernels, second / "log")
        assert len(kernels.managers) == 1  # one kernel ran both
        # The kernel's own pid, not read from the failed notebook's first output: in one
        # loaded CI run a new kernel's first output was missing from its cell.
        pid = str(kernels.managers[0].provisioner.pid)
    failed = nbformat.read(first / "99_failing.ipynb", as_version=4)  # kept, with its traceback
    assert [
        o.ename for c in failed.cells for o in c.get("outputs", []) if o.output_type == "error"
    ] == ["UnknownSymbolError"]
    assert not list(first.glob(".running.*"))  # no temporary left behind
    # the same kernel, in a new session: no variable of the failed notebook, counts from 1,
    # this notebook's folder and log
    assert after.cells[0].outputs[0].text.strip() == pid
    assert after.cells[1].outputs[0].text.split() == ["False", str(second), str(second / "log")]
    assert [c.execution_count for c in after.cells] == [1, 2, 3]
    # marketlib's records go to the log of the notebook being run, and only there
    assert "said by the failing one" in (first / "log").read_text()
    assert "said by the next one" in (second / "log").read_text()
    assert "the next one" not in (first / "log").read_text()
    assert "the failing one" not in (second / "log").read_text()
    assert not psutil.pid_exists(int(pid))  # stopped with the run


@pytest.mark.notebook
def test_a_study_whose_notebook_fails_stops_the_run_and_the_other_studies_keep_their_reports(
    tmp_path,
):
    text = (REPO / "seeds" / "deepseek.toml").read_text("utf-8")
    text = text.replace('article = "deepseek-article.txt"\n', "")
    broken = tmp_path / "broken.toml"  # it fails in the kernel, when a notebook opens it
    broken.write_text(text.replace('event_date = "2025-01-27"', 'event_date = "27 Jan"'))
    out = tmp_path / "out"
    # Previous runs of both studies, timed so that the tariff study's first two notebooks run
    # first, one per kernel, and the broken study's (01, then 02 beside it) as they end.
    order = ("tariffs-2025/01", "tariffs-2025/02", "broken/01")
    for study in ("tariffs-2025", "broken"):
        folder = out / "reports" / study
        (folder / "executed").mkdir(parents=True)
        for path in NOTEBOOKS:
            task = f"{study}/{path.name[:2]}"
            seconds = 99 - order.index(task) if task in order else 1
            book = nbformat.v4.new_notebook(metadata={"papermill": {"duration": seconds}})
            nbformat.write(book, folder / "executed" / path.name)
        (folder / "report.log").write_text(f"the previous log of {study}")
        (folder / "index.html").write_text(f"the previous report of {study}")
        figures = out / "figures" / study
        figures.mkdir(parents=True)
        for name in PROMISED:
            (figures / f"{name}.png").write_text(f"the previous {name} of {study}")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    named = rf"^study broken \({re.escape(str(broken))}\): 0[12]_\w+\.ipynb failed in cell"
    with pytest.raises(NotebookError, match=named) as raised:  # the file as given
        report.build_reports([str(broken), "tariffs-2025"], out, jobs=2)
    failed_run = out / "reports" / "broken" / "failed-run"
    assert str(raised.value).endswith(
        "the previous reports of broken, tariffs-2025 are as they were; this run's log and "
        f"executed notebooks of broken are kept in {failed_run}"
    )
    # Every file of both previous reports, the broken study's log and executed notebooks too,
    # is as it was; what the tariff study's notebooks drew stayed in staging.
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert {p: b for p, b in after.items() if not p.is_relative_to(failed_run)} == before
    assert "event_date must be a date" in (failed_run / "report.log").read_text()  # this run's
    books = [nbformat.read(p, as_version=4) for p in failed_run.glob("0[12]_*.ipynb")]
    outputs = [o for b in books for c in b.cells for o in c.get("outputs", [])]
    assert any(o.output_type == "error" and o.traceback for o in outputs)  # the failed one's
    assert not list(out.glob("reports/*/.executing"))  # no staging folder left
    kernels = [
        p for p in psutil.Process().children(recursive=True) if "ipykernel" in " ".join(p.cmdline())
    ]
    assert kernels == []


@pytest.mark.notebook
def test_a_notebook_run_after_others_in_its_kernel_shows_what_a_fresh_kernel_shows(
    reports, tmp_path
):
    out, _ = reports
    books = {
        (study, path): nbformat.read(out / "reports" / study / "executed" / path.name, 4)
        for study in [*STUDIES, "regrouped"]
        for path in NOTEBOOKS
    }
    started = sorted(books, key=lambda key: books[key].metadata.papermill.start_time)
    study, path = started[-1]  # after every other notebook: in a kernel that ran some
    assert len(books) > REPORT_KERNELS
    import papermill

    fresh = papermill.execute_notebook(
        str(path),
        str(tmp_path / path.name),
        parameters={
            "study": str(out / "regrouped.toml") if study == "regrouped" else study,
            "source": "snapshot",
            "figures_dir": str(tmp_path / "figures"),
        },
        kernel_name="python3",
        progress_bar=False,
    )

    def shown(book):
        return [
            (c.execution_count,
             [{k: v for k, v in o.items() if k in ("output_type", "name", "text", "data")}
              for o in c.outputs])
            for c in book.cells
            if c.cell_type == "code" and not {"parameters", "injected-parameters"} & set(
                c.metadata.get("tags", [])
            )
        ]  # fmt: skip

    assert shown(fresh) == shown(books[study, path]), (study, path.name)
    drawn = sorted((tmp_path / "figures").iterdir())
    assert drawn, path.name
    for png in drawn:
        assert png.read_bytes() == (out / "figures" / study / png.name).read_bytes(), png.name


def test_every_notebook_has_a_text_twin_in_sync():
    import jupytext

    def cells(book):
        return [
            (c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in book.cells
        ]

    for path in NOTEBOOKS:
        twin = path.with_suffix(".py")
        assert twin.is_file(), f"{path.name} has no text twin: run jupytext --sync"
        assert cells(jupytext.read(twin)) == cells(nbformat.read(path, as_version=4)), (
            f"{path.name} and {twin.name} have drifted: run `jupytext --sync notebooks/*.ipynb`"
        )


# The user's study without windows, verdict, charts or event study, its claim uncheckable.
MINIMAL_STUDY = (
    USER_STUDY.split("[windows.")[0]
    + """
[[claims]]
id = "acme_loss"
quote = "Acme lost a fortune"
checkable = false
why = "(test) no verdict: the notebooks must read a study without one"
"""
)


@pytest.mark.notebook
def test_the_event_day_and_claims_notebooks_read_a_minimal_study(tmp_path):
    # No [charts], no [event_study], no checkable claim, and ACME's file (real AMD closes)
    # without the event day's row: the notebooks say so instead of failing.
    import papermill

    from marketlib import snapshot

    real = snapshot.read_price_file("AMD").drop(index=pd.Timestamp("2025-01-27"))
    study = write_users_study(tmp_path, MINIMAL_STUDY, closes=real)
    said = []
    for path in [p for p in NOTEBOOKS if p.name[:2] in ("02", "03")]:
        book = papermill.execute_notebook(
            str(path), str(tmp_path / path.name), kernel_name="python3", progress_bar=False,
            parameters={"study": str(study), "source": "snapshot",
                        "figures_dir": str(tmp_path / "figures")},
        )  # fmt: skip
        said += [o.get("text", "") for c in book.cells for o in c.get("outputs", [])]
    text = "".join(said)
    assert "no [charts.venues] panels: there is no venue chart" in text
    assert "no checkable claim with a verdict: there is nothing to grade" in text
    assert not (tmp_path / "figures" / "02_venue_timing.png").exists()
    assert (tmp_path / "figures" / "02_waterfall_one_day.png").exists()


def test_under_the_report_yfinances_chatter_goes_to_the_log_not_into_the_cells(
    tmp_path, monkeypatch, capfd
):
    import logging

    from marketlib import notebook

    log = tmp_path / "report.log"
    monkeypatch.setenv("MARKETLIB_LOG_FILE", str(log))
    notebook._route_logging()
    try:
        logging.getLogger("yfinance").error("1 Failed download: ['^GSPC'] (SYNTHETIC test line)")
        logging.getLogger("marketlib.test").warning("said by marketlib")
    finally:
        monkeypatch.delenv("MARKETLIB_LOG_FILE")
        notebook._route_logging()  # as a notebook run by hand: back to the usual handlers
    text = log.read_text()
    assert "yfinance: 1 Failed download: ['^GSPC']" in text and "said by marketlib" in text
    assert "Failed download" not in capfd.readouterr().err
    for name in ("yfinance", "marketlib"):  # as they were: nothing left for the next test
        logger = logging.getLogger(name)
        assert logger.propagate and not logger.handlers and logger.level == logging.NOTSET
