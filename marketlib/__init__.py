"""marketlib: check a news article's market-impact claims against real prices.

Data flows one way: a study file -> sources (snapshot, a user's folder, cache, Yahoo) ->
prices and reference tables, loaded once -> pure engines (market values, window changes and
verdicts, event study) -> tables and plots -> notebooks and the report.
"""

from marketlib.errors import (
    CacheError,
    DataUnavailableError,
    InvalidInputError,
    MarketCapError,
    MarketlibError,
    NotebookError,
    OutputError,
    SnapshotIntegrityError,
    SourceUnavailableError,
    UnknownSymbolError,
)

__all__ = [
    "CacheError",
    "DataUnavailableError",
    "InvalidInputError",
    "MarketCapError",
    "MarketlibError",
    "NotebookError",
    "OutputError",
    "SnapshotIntegrityError",
    "SourceUnavailableError",
    "UnknownSymbolError",
    "load_prices",
    "load_universe",
    "open_study",
]
__version__ = "0.1.0"

_LAZY = {
    "load_prices": "marketlib.prices",
    "load_universe": "marketlib.universe",
    "open_study": "marketlib.study",
}


def __getattr__(name: str) -> object:
    # The API functions load pandas; importing them on first use keeps `marketlib report`'s
    # parent process (which only drives Jupyter kernels) free of it.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'marketlib' has no attribute {name!r}")
