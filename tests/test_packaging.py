"""The front door: layout, environment.yml agreeing with pyproject, CI calling `make test`."""

import re
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
