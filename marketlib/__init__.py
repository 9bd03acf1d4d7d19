"""marketlib: check a news article's market-impact claims against real prices.

Data flows one way: sources (snapshot, cache, Yahoo) -> tidy prices -> market caps ->
events and claims -> plots -> notebooks and the report.
"""

from marketlib.errors import (
    CacheError,
    DataUnavailableError,
    InvalidInputError,
    MarketCapError,
    MarketlibError,
    SnapshotIntegrityError,
    SourceUnavailableError,
    UnknownSymbolError,
)
from marketlib.prices import load_prices
from marketlib.universe import load_universe

__all__ = [
    "CacheError",
    "DataUnavailableError",
    "InvalidInputError",
    "MarketCapError",
    "MarketlibError",
    "SnapshotIntegrityError",
    "SourceUnavailableError",
    "UnknownSymbolError",
    "load_prices",
    "load_universe",
]
__version__ = "0.1.0"
