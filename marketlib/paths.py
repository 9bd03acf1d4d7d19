"""The one home of marketlib's own paths: bundled data, studies and notebooks.

A wheel carries the bundled studies (the repository's ``seeds/``) and the notebooks inside the
package (``pyproject.toml`` maps them to ``marketlib/studies`` and ``marketlib/notebooks``); an
editable checkout has them beside the package, where they are edited.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

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
