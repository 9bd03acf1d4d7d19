"""The one home of marketlib's own paths: bundled data, studies and notebooks.

A wheel carries the bundled studies (the repository's ``seeds/``) and the notebooks inside the
package (``pyproject.toml`` maps them to ``marketlib/studies`` and ``marketlib/notebooks``); an
editable checkout has them beside the package, where they are edited.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from marketlib.errors import InvalidInputError

_CHECKOUT_NAMES = {"studies": "seeds", "notebooks": "notebooks"}


def package_data(relative: str) -> Path:
    """A file or folder under the package's ``data/`` (the snapshot, the registry, the style)."""
    return Path(str(resources.files("marketlib").joinpath("data", relative)))


def bundled(kind: str) -> Path:
    """The folder of the bundled ``studies`` or ``notebooks``."""
    inside = Path(str(resources.files("marketlib"))) / kind
    if inside.is_dir():
        return inside
    return Path(__file__).resolve().parents[1] / _CHECKOUT_NAMES[kind]


def bundled_studies() -> dict[str, Path]:
    """The studies shipped with the package: id (file stem) -> path, by file name."""
    return {p.stem: p for p in sorted(bundled("studies").glob("*.toml"))}


def study_path(study: str | Path | None) -> Path:
    """A study file path from a path or a bundled study's id.

    None: the default study, the first bundled one by file name.
    """
    known = bundled_studies()
    if study is None:
        return next(iter(known.values()))
    if isinstance(study, str) and study in known:
        return known[study]
    path = Path(study)
    if not path.is_file():
        raise InvalidInputError(
            f"study {str(study)!r} is neither a study file nor a bundled study "
            f"({', '.join(known)}): pass the path to a study .toml"
        )
    return path
