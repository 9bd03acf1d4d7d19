"""The one exception hierarchy of marketlib.

Every error names the offending input (symbol, date, file) and says what to do about it, so the
CLI can print it as a single line and a notebook user can act on it without a traceback.
"""

from __future__ import annotations

import math


class MarketlibError(Exception):
    """Base class of every error marketlib raises on purpose."""


class UnknownSymbolError(MarketlibError, KeyError):
    """A symbol or group name that the universe does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidInputError(MarketlibError, ValueError):
    """A malformed argument: a date that does not parse, start after end, an unsafe symbol."""


class DataUnavailableError(MarketlibError):
    """The data asked for is not covered by the source that was asked."""


class SnapshotIntegrityError(MarketlibError):
    """A bundled snapshot file does not match its manifest (hash, rows, schema)."""


class SourceUnavailableError(MarketlibError):
    """A live source (Yahoo via yfinance) could not be reached or answered with nothing usable.

    ``partial`` holds what did arrive (symbol -> prices), so a caller can keep it; ``reasons``
    says why each symbol that did not arrive is missing (symbol -> one of ``rate_limit``,
    ``dns``, ``timeout``, ``deadline``, ``connection``, ``unknown_symbol``, ``no_reason``);
    ``why`` is the reason in words, without the list of symbols.
    """

    def __init__(
        self,
        message: str,
        partial: dict | None = None,
        reasons: dict[str, str] | None = None,
        why: str = "",
    ) -> None:
        super().__init__(message)
        self.partial = partial or {}
        self.reasons = reasons or {}
        self.why = why or message  # the reason alone, without the symbols (for a fallback note)


class CacheError(MarketlibError):
    """An on-disk cache file is unreadable, corrupt, or its directory is not writable."""


class OutputError(MarketlibError):
    """An output cannot be written where it was asked to go (a read-only folder, a file where a
    folder should be, a full disk, a destination that is not marketlib's to replace). Whatever
    was there before is left as it was."""


class MarketCapError(MarketlibError):
    """A market capitalisation cannot be computed: no shares fact, no FX rate, unknown currency."""


class NotebookError(MarketlibError):
    """A report notebook failed in its kernel; the message names the notebook and the cell."""


def is_positive_number(value: object) -> bool:
    """Whether a value read from a file (TOML, JSON) is a finite number above 0, the one test
    of every input check that wants one: not a bool, and not TOML's ``nan`` or ``inf``."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
