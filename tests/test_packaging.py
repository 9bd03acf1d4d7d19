"""The front door: layout, environment.yml agreeing with pyproject, CI calling `make test`."""

import re
import tomllib
from pathlib import Path

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
def test_a_plain_install_runs_claims_and_report_from_another_folder(tmp_path):
    """`pip install .` (not editable) into a fresh venv: the bundled studies and notebooks come
    from the installed package, not from this checkout. The venv takes its dependencies from
    the test environment (a .pth line), so the install needs no network."""
    import subprocess
    import sys
    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    deps = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "test_dependencies.pth").write_text(deps + "\n")
    # Build the wheel with this environment's setuptools, install it (a wheel needs none).
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "wheel"), str(REPO)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "wheel").glob("*.whl"))
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import marketlib; print(marketlib.__file__)"],
        capture_output=True, text=True, cwd=elsewhere, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(purelib), where
    claims = subprocess.run(
        [str(venv / "bin" / "marketlib"), "claims", "--format", "json"],
        capture_output=True, text=True, cwd=elsewhere,
    )  # fmt: skip
    assert claims.returncode == 0, claims.stderr[-2000:]
    assert '"of 24 definitions' not in claims.stdout and "market_value_erased" in claims.stdout
    studies = subprocess.run(
        [str(venv / "bin" / "marketlib"), "event-study", "--study", "tariffs-2025",
         "--format", "csv"],
        capture_output=True, text=True, cwd=elsewhere,
    )  # fmt: skip
    assert studies.returncode == 0 and "AAPL" in studies.stdout, studies.stderr[-2000:]
    # nbconvert's templates are data files of the dependencies' prefix (not the .pth'd path);
    # only they are lent, so the kernel is the fresh venv's own Python (the native kernel).
    jupyter = tmp_path / "jupyter"
    jupyter.mkdir()
    (jupyter / "nbconvert").symlink_to(Path(sys.prefix) / "share" / "jupyter" / "nbconvert")
    out = tmp_path / "out"
    report = subprocess.run(
        [str(venv / "bin" / "marketlib"), "report", "--out", str(out)],
        capture_output=True, text=True, cwd=elsewhere,
        env=dict(__import__("os").environ)
        | {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "JUPYTER_PATH": str(jupyter)},
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    assert len(list((out / "figures" / "deepseek").glob("*.png"))) == 9
    executed = (
        out / "reports" / "deepseek" / "executed" / "01_universe_and_data.ipynb"
    ).read_text()
    assert str(REPO) not in executed.replace(str(tmp_path), "")  # the kernel used the wheel
