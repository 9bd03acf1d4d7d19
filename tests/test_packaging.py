"""The front door: layout, environment.yml agreeing with pyproject, CI calling `make test`."""

import re
import subprocess
import tomllib

import pytest
from conftest import REPO

yaml = pytest.importorskip("yaml")


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_and_pyproject_name_the_same_dependencies():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pyproject = {
        _name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]
    }
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    assert pyproject == conda, (
        f"only in pyproject: {pyproject - conda}; only in conda: {conda - pyproject}"
    )
    for must in ["pandas", "yfinance", "matplotlib", "jupyter", "pytest"]:
        assert must in pyproject


def test_layout_and_front_door():
    for folder in ["notebooks", "marketlib", "tests", "seeds"]:
        assert (REPO / folder).is_dir()
    for file in ["environment.yml", "pyproject.toml", "Makefile", "README.md", ".gitignore"]:
        assert (REPO / file).is_file()
    readme = (REPO / "README.md").read_text()
    assert "make report" in readme and "make test" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_yfinance_is_imported_in_exactly_one_module():
    importers = [
        p.relative_to(REPO).as_posix()
        for p in (REPO / "marketlib").rglob("*.py")
        if re.search(r"^\s*(import yfinance|from yfinance)", p.read_text(), re.M)
    ]
    assert importers == ["marketlib/yahoo.py"]


@pytest.mark.notebook
def test_a_plain_install_runs_claims_event_study_and_report_from_another_folder(installed, reports):
    """`pip install .` (a wheel, not editable) into a fresh venv: the bundled studies and
    notebooks come from the installed package, not from this checkout."""
    python = str(installed.venv / "bin" / "python")
    where = subprocess.run(
        [python, "-c", "import marketlib; print(marketlib.__file__)"],
        capture_output=True, text=True, cwd=installed.elsewhere, env=installed.env, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(installed.purelib)), where
    claims = installed.run("claims", "--format", "json")
    assert claims.returncode == 0, claims.stderr[-2000:]
    assert "market_value_erased" in claims.stdout
    studies = installed.run("event-study", "--study", "tariffs-2025", "--format", "csv")
    assert studies.returncode == 0 and "AAPL" in studies.stdout, studies.stderr[-2000:]
    out, run = reports  # the session's reports ran from this install
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(list((out / "figures" / "deepseek").glob("*.png"))) == 9
    for notebook in (out / "reports" / "deepseek" / "executed").glob("*.ipynb"):
        assert str(REPO) not in notebook.read_text()  # the kernels used the wheel, not the repo
