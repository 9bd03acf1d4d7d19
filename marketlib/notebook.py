"""What keeps the notebooks to short narrative cells: the parameter check, notes and figures.

Every notebook takes the same three papermill parameters, ``study`` (a study file or a bundled
study's id), ``source`` and ``figures_dir``; everything else comes from the study file. A
parameter the notebooks do not take is refused, never silently ignored.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from marketlib.errors import InvalidInputError
from marketlib.sources import SOURCES
from marketlib.study import Study, open_study
from marketlib.tables import readable

if TYPE_CHECKING:
    import pandas as pd
    from IPython.display import HTML, Image
    from matplotlib.figure import Figure

PARAMETERS = ("study", "source", "figures_dir")
# What papermill can inject: literal values. The notebooks bind no such names themselves, so a
# re-run cell does not trip the check.
_LITERALS = (str, int, float, bool, list, dict, tuple, type(None), Path)


@dataclass(frozen=True)
class Parameters:
    study: Study
    figures_dir: Path


def check_parameters(namespace: dict) -> Parameters:
    """Validate the notebook's parameters (its ``globals()``), open the study, make the figure
    folder. Any other name set before this call (a papermill ``-p`` the notebooks do not take)
    is refused with the reason."""
    extra = sorted(
        name
        for name, value in namespace.items()
        if not name.startswith("_")
        and name not in PARAMETERS
        and name not in ("In", "Out")
        and isinstance(value, _LITERALS)
    )
    if extra:
        raise InvalidInputError(
            f"notebook parameter {extra[0]!r} is not one the notebooks take "
            f"({', '.join(PARAMETERS)}): dates, groups, windows and chart spans come from the "
            "study file; write a study file with the settings you want and pass -p study PATH"
        )
    for name in PARAMETERS:
        value = namespace.get(name)
        if not isinstance(value, str | Path):
            raise InvalidInputError(
                f"notebook parameter {name}={value!r} is a {type(value).__name__}: pass a string"
            )
    if namespace["source"] not in SOURCES:
        raise InvalidInputError(
            f"notebook parameter source={namespace['source']!r}: use one of {', '.join(SOURCES)}"
        )
    _route_logging()
    study = open_study(str(namespace["study"]), source=str(namespace["source"]))
    folder = Path(namespace["figures_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    return Parameters(study, folder)


def source_note(study: Study) -> str:
    """The source line under every chart: which data the numbers come from."""
    if study.source_name == "snapshot" and study.data is None:
        return (
            "Source: bundled snapshot of real daily prices "
            "(see marketlib/data/snapshot/provenance)."
        )
    return f"Source: {study.source.describe()} (daily prices; see the study's data notes)."


def event(study: Study) -> tuple[object, str]:
    """The event day and its label, as charts mark it."""
    return study.event_date, study.event_label


def venue_panels(study: Study) -> dict:
    """Rebased closes per venue panel of the study's ``[charts.venues]``, each on its sessions."""
    spec = study.charts.get("venues", {})
    return {
        panel["title"]: study.rebased(panel["symbols"], spec.get("start"), spec.get("end"))
        for panel in spec.get("panels", [])
    }


def show_figure(fig: Figure, name: str, folder: Path) -> Image:
    """Save ``fig`` as PNG (:func:`plots.save_figure`) and display the saved file.

    The notebook then shows exactly the file in ``figures/``, and matplotlib draws the figure
    once: not again to display it, nor once more per extra format.
    """
    from IPython.display import Image

    from marketlib.plots import save_figure  # here: the parameter check needs no drawing engine

    titles = [fig._suptitle.get_text()] if fig._suptitle else []
    titles += [ax.get_title() for ax in fig.axes if ax.get_title()]
    description = "; ".join(titles[:3]) or name
    (png,) = save_figure(fig, name, folder)
    return Image(filename=str(png), metadata={"alt": description})


def _route_logging() -> None:
    """Under `marketlib report`, send marketlib's and yfinance's log records to the report's
    log file, not into cells as stderr boxes; what a reader must know is in the tables
    (coverage, skipped listings), and yfinance's chatter (a download that failed, a cookie it
    could not fetch) is the log's too. Run by hand, a notebook shows warnings as usual.

    A report's kernel runs notebook after notebook, of one study or several: records go to
    the log of the study being run, and no handler of an earlier one is left behind."""
    target = os.environ.get("MARKETLIB_LOG_FILE")
    loggers = [logging.getLogger(name) for name in _ROUTED_LOGGERS]
    routed = {h for logger in loggers for h in logger.handlers if getattr(h, _ROUTED, False)}
    if routed and {h.baseFilename for h in routed} == {target}:
        return
    for logger in loggers:
        for handler in routed & set(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = not target
    for handler in routed:
        handler.close()
    if not target:
        if routed:  # as before routing: INFO records were for the log alone
            loggers[0].setLevel(logging.NOTSET)
        return
    handler = logging.FileHandler(target, encoding="utf-8")
    handler.setFormatter(logging.Formatter("marketlib: %(levelname)s: %(name)s: %(message)s"))
    setattr(handler, _ROUTED, True)
    for logger in loggers:
        logger.addHandler(handler)
    loggers[0].setLevel(logging.INFO)


_ROUTED_LOGGERS = ("marketlib", "yfinance")
_ROUTED = "_marketlib_report_log"


def show(frame: pd.DataFrame) -> HTML:
    """A table for reading: every cell whole (no "..." cut), whole numbers as integers, no
    0..N row numbers, missing values as "-"."""
    import pandas as pd
    from IPython.display import HTML

    with pd.option_context("display.max_colwidth", None, "display.max_columns", None):
        return HTML(readable(frame).to_html(index=False, na_rep="-", border=0))
