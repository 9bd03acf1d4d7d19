"""The live source: Yahoo Finance through yfinance. The only module that imports yfinance.

yfinance 1.x does not raise when Yahoo cannot be reached: it returns an empty frame (or a
frame without the failed ticker) and logs why. Every answer is therefore checked here, and an
empty or partial answer becomes an error, never data, saying why each symbol is missing (rate
limit, DNS failure, timeout, refused connection, unknown symbol), read from what yfinance
logged. yfinance's logger is left as the user configured it: its records are read through a
filter that passes on exactly what the user's level lets through.

Every online operation runs against a :class:`Deadline`: one budget of seconds (default 30,
``MARKETLIB_TIMEOUT`` or ``--timeout``) shared by every request, retry and batch a source
makes. Each request's own timeout is cut to what is left; yfinance runs in a daemon thread
marketlib stops waiting for when the budget is spent, and its session refuses any request
after that, so nothing it started outlives the deadline by more than a moment.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import ClassVar

import pandas as pd

from marketlib.cache import check_symbol
from marketlib.errors import InvalidInputError, SourceUnavailableError
from marketlib.schema import PRICE_FIELDS, TABLES
from marketlib.universe import Listing

log = logging.getLogger(__name__)

# yfinance's column names for what marketlib calls open..volume.
YAHOO_FIELDS = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Adj Close": "adj_close",
    "Volume": "volume",
}
SYMBOLS_PER_CALL = 10
REQUEST_TIMEOUT_SECONDS = 10.0  # one request's own limit (cut to what the deadline leaves)
DEFAULT_TIMEOUT_SECONDS = REQUEST_TIMEOUT_SECONDS  # the name earlier versions used
DEFAULT_DEADLINE_SECONDS = 30.0  # everything one source asks of Yahoo, together
TIMEOUT_ENV = "MARKETLIB_TIMEOUT"
PARALLEL_TICKERS = 8  # Ticker.info / get_shares_full calls in flight at once

Downloader = Callable[..., pd.DataFrame | None]
TickerFactory = Callable[[str], object]  # stands in for yfinance.Ticker (tests)

# Yahoo's exchange codes (``Ticker.info["exchange"]``) -> (ISO 10383 MIC, exchange-calendars
# name). Nasdaq listings follow the New York calendar, as the bundled registry has them.
YAHOO_EXCHANGES = {
    "NMS": ("XNAS", "XNYS"),
    "NGM": ("XNAS", "XNYS"),
    "NCM": ("XNAS", "XNYS"),
    "NAS": ("XNAS", "XNYS"),
    "NYQ": ("XNYS", "XNYS"),
    "ASE": ("XASE", "XNYS"),
    "PCX": ("ARCX", "XNYS"),
    "BTS": ("BATS", "XNYS"),
    "JPX": ("XTKS", "XTKS"),
    "GER": ("XETR", "XETR"),
    "ETR": ("XETR", "XETR"),
    "LSE": ("XLON", "XLON"),
    "AMS": ("XAMS", "XAMS"),
    "PAR": ("XPAR", "XPAR"),
    "HKG": ("XHKG", "XHKG"),
    "TOR": ("XTSE", "XTSE"),
    "TAI": ("XTAI", "XTAI"),
    "EBS": ("XSWX", "XSWX"),
    "ASX": ("XASX", "XASX"),
}
YAHOO_ROLES = {"EQUITY": "equity", "ETF": "etf", "INDEX": "index", "CURRENCY": "fx"}


# ---------------------------------------------------------------------------- the deadline


def check_timeout(value: object, what: str = "timeout") -> float:
    """A deadline in seconds: a positive, finite number (``"30"``, ``7.5``), else an error."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInputError(
            f"{what} {value!r} is not a number of seconds: give a positive number such as 30"
        )
    return seconds


def timeout_setting() -> float:
    """The deadline of online operations, in seconds: ``MARKETLIB_TIMEOUT`` if set, else 30.

    The one place the setting is read; the CLI's ``--timeout`` sets it for the command (and
    the notebook kernels of ``marketlib report``).
    """
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_DEADLINE_SECONDS
    return check_timeout(raw.strip(), TIMEOUT_ENV)


class Deadline:
    """A budget of seconds for everything one source asks of Yahoo.

    The clock starts at the first request (reading the study or the snapshot does not spend
    it); every later request, retry and batch draws on what is left.
    """

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = timeout_setting() if seconds is None else check_timeout(seconds)
        self._ends: float | None = None
        self._lock = threading.Lock()

    def start(self) -> Deadline:
        with self._lock:
            if self._ends is None:
                self._ends = time.monotonic() + self.seconds
        return self

    def remaining(self) -> float:
        """Seconds left (0 once spent); starts the clock."""
        self.start()
        assert self._ends is not None
        return max(0.0, self._ends - time.monotonic())

    @property
    def grace(self) -> float:
        """How long before the deadline marketlib's session stops yfinance's requests, so that
        yfinance winds down (and says why) before marketlib stops waiting for it."""
        return min(0.5, self.seconds / 10)

    @property
    def expired(self) -> bool:
        return self._ends is not None and time.monotonic() >= self._ends

    def label(self) -> str:
        return f"{self.seconds:g} s deadline (set with --timeout or {TIMEOUT_ENV})"

    def __repr__(self) -> str:
        return f"Deadline({self.seconds:g} s, {'not started' if self._ends is None else 'running'})"


def as_deadline(deadline: Deadline | float | None) -> Deadline:
    return deadline if isinstance(deadline, Deadline) else Deadline(deadline)


class _DeadlineExceeded(TimeoutError):
    """Raised by marketlib's session in place of a request the deadline leaves no time for
    (a TimeoutError, so yfinance treats it as the network failure it stands for)."""


# ---------------------------------------------------------------------------- why it failed

# What yfinance (and curl, under it) say, by kind of failure, in the order they win: a network
# failure explains an "unknown symbol" that follows from it (no timezone found), not the reverse.
_KINDS = (
    ("rate_limit", re.compile(r"YFRateLimitError|Too Many Requests|rate.?limit|\b429\b", re.I)),
    (
        "dns",
        re.compile(
            r"DNSError|Could not resolve|curl: \((5|6)\)|Name or service not known|"
            r"nodename nor servname|getaddrinfo|NameResolution|name resolution",
            re.I,
        ),
    ),
    ("deadline", re.compile(r"marketlib deadline", re.I)),
    ("timeout", re.compile(r"curl: \(28\)|timed? ?out|Timeout", re.I)),
    (
        "connection",
        re.compile(
            r"ConnectionError|curl: \((7|35|52|56)\)|Connection refused|Failed to connect|"
            r"reset by peer|ProxyError|SSLError|CONNECT",
            re.I,
        ),
    ),
    (
        "unknown_symbol",
        re.compile(
            r"possibly delisted|no price data found|no timezone found|YFTzMissingError|"
            r"YFPricesMissingError|Quote not found|No data found",
            re.I,
        ),
    ),
)
REASONS = {
    "rate_limit": "Yahoo is rate-limiting this address (HTTP 429 Too Many Requests): wait a "
    "few minutes before asking again",
    "dns": "a host name could not be resolved (DNS failure: offline, no DNS server, or a "
    "misspelt proxy): check the network",
    "deadline": "no answer within the {deadline}: a dead proxy or a firewall? check the "
    "network or proxy, or allow more time",
    "timeout": "the connection timed out (no answer from Yahoo or the proxy): check the "
    "network or proxy, or allow more time with --timeout or " + TIMEOUT_ENV,
    "connection": "the connection to Yahoo failed (refused, reset or blocked): check the "
    "network or proxy",
    "unknown_symbol": "Yahoo has no prices for it over the span (an unknown or delisted "
    "symbol, or a span before its listing): check the symbol on finance.yahoo.com",
    "no_reason": "yfinance gave no reason (offline, or the symbol is not on Yahoo)",
}
_SYMBOLS_LINE = re.compile(r"^\s*\[(?P<symbols>[^\]]*)\]: (?P<text>.*)$", re.S)
_TICKER_LINE = re.compile(r"ticker '(?P<symbol>[^']+)'", re.I)
_CURL = re.compile(r"curl: \(\d+\) .*?(?=\. |\.?$|\.?'\))")


def classify(texts: Sequence[str]) -> tuple[str, str]:
    """The kind of failure ``texts`` (log lines, exception texts) describe, and the line that
    says so (shortened); ``("no_reason", "")`` when none does."""
    for kind, pattern in _KINDS:
        for text in texts:
            if pattern.search(text):
                return kind, _excerpt(text)
    return "no_reason", ""


def _excerpt(text: str) -> str:
    curl = _CURL.search(text)
    shown = curl.group(0) if curl else text
    shown = " ".join(shown.split()).strip(" '\"")
    return shown if len(shown) <= 100 else shown[:97] + "..."


def reasons_by_symbol(
    messages: Sequence[str], symbols: Sequence[str]
) -> dict[str, tuple[str, str]]:
    """Why each of ``symbols`` got no prices, from yfinance's log lines.

    A line naming symbols (``['NVDA', 'MSFT']: Timeout(...)``, ``ticker 'NVDA' reason: ...``)
    counts for those symbols; a line naming none (a failed cookie fetch) counts for all.
    """
    general: list[str] = []
    own: dict[str, list[str]] = {s.upper(): [] for s in symbols}
    for message in messages:
        named: list[str] = []
        listed = _SYMBOLS_LINE.match(message)
        if listed:
            named = [p.strip(" '\"").upper() for p in listed.group("symbols").split(",")]
        else:
            named = [m.group("symbol").upper() for m in _TICKER_LINE.finditer(message)]
        hits = [n for n in named if n in own]
        for name in hits:
            own[name].append(message)
        if not hits:
            general.append(message)
    return {s: classify([*own[s.upper()], *general]) for s in symbols}


def describe_reasons(
    reasons: dict[str, tuple[str, str]], deadline: Deadline | None = None, *, named: bool = False
) -> str:
    """One clause per kind of failure: ``NVDA, MSFT: <reason> (yfinance: curl: (28) ...)``;
    a single kind is said without its symbols (the message names them) unless ``named``."""
    by_kind: dict[str, list[str]] = {}
    detail: dict[str, str] = {}
    for symbol, (kind, text) in reasons.items():
        by_kind.setdefault(kind, []).append(symbol)
        detail.setdefault(kind, text)
    label = deadline.label() if deadline else f"{DEFAULT_DEADLINE_SECONDS:g} s deadline"
    clauses = []
    for kind, symbols in by_kind.items():
        said = f" (yfinance: {detail[kind]})" if detail[kind] and kind != "deadline" else ""
        text = REASONS[kind].format(deadline=label) + said
        clauses.append(text if len(by_kind) == 1 and not named else f"{', '.join(symbols)}: {text}")
    return "; ".join(clauses)


class _LogCapture:
    """yfinance's log records (WARNING and above) while marketlib waits on it.

    The logger is left as the user configured it: no handler is added and ``propagate`` is
    not touched; a filter reads each record and passes on exactly the records the user's
    level would have let through. If that level hides warnings (``CRITICAL``), the logger's
    level is lowered to WARNING while a capture is active, and restored after the last one.
    """

    _lock = threading.Lock()
    _holding: ClassVar[list[_LogCapture]] = []  # the captures held now: each reads every record
    _threshold = logging.WARNING
    _saved: int = logging.NOTSET  # the level marketlib replaced, while _lowered_by holds it
    _lowered_by: _LogCapture | None = None  # the capture whose release restores it

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._holders = 0
        self._logger = logging.getLogger("yfinance")

    @staticmethod
    def _read(record: logging.LogRecord) -> bool:
        """The one filter on the logger while any capture is held (one per capture would stop
        at the first that drops a record, and the others would not read it)."""
        if record.levelno >= logging.WARNING:
            for capture in _LogCapture._holding:
                capture.messages.append(record.getMessage())
        return record.levelno >= _LogCapture._threshold

    def hold(self) -> _LogCapture:
        cls = type(self)
        with cls._lock:
            if self._holders == 0:
                level = self._logger.getEffectiveLevel()
                if not cls._holding:
                    cls._threshold = level
                    self._logger.addFilter(cls._read)
                if level > logging.WARNING:
                    # Checked at every hold, not only the first: a call marketlib stopped
                    # waiting for may still hold its capture when the user raises the level.
                    cls._threshold, cls._saved, cls._lowered_by = level, self._logger.level, self
                    self._logger.setLevel(logging.WARNING)
                cls._holding.append(self)
            self._holders += 1
        return self

    def release(self) -> None:
        cls = type(self)
        with cls._lock:
            self._holders -= 1
            if self._holders:
                return
            cls._holding.remove(self)
            if cls._lowered_by is self:  # the level is the user's again when its call ends
                if self._logger.level == logging.WARNING:  # unless the user set it meanwhile
                    self._logger.setLevel(cls._saved)
                cls._lowered_by = None
            if not cls._holding:
                self._logger.removeFilter(cls._read)


# Modules whose own warnings (yfinance's pandas calls, deprecated in pandas 3.1; curl_cffi's)
# are not the user's to fix.
_NOT_THE_USERS = (r"yfinance(\.|$)", r"curl_cffi(\.|$)")
_FILTERS = [("ignore", None, Warning, re.compile(module), 0) for module in _NOT_THE_USERS]
_filters_lock = threading.Lock()


def _ignore_yfinance_warnings() -> None:
    """Ignore the warnings raised in yfinance's and curl_cffi's own code, for the whole process,
    from the first call marketlib makes of yfinance on.

    Not inside a ``warnings.catch_warnings`` block: that block is process-wide, and it ended
    while the daemon threads marketlib stops waiting for at a deadline still ran yfinance,
    whose warnings then reached stderr after marketlib's error line. A filter matches the
    module a warning is raised from, so the user's warnings and marketlib's stay visible (and
    fatal under ``-W error``). The filters are put back in front at every call if anything
    took them away or went ahead of them since (a ``catch_warnings`` block that ended, a
    ``simplefilter("error")`` in a notebook, yfinance's own filter when it is imported):
    behind ``error`` a deprecation in yfinance's code would fail the download.
    """
    with _filters_lock:
        if warnings.filters[: len(_FILTERS)] != _FILTERS:
            for module in reversed(_NOT_THE_USERS):
                warnings.filterwarnings("ignore", module=module)


class _Late(Exception):
    """The call did not finish before the deadline (marketlib stopped waiting)."""


def _within(deadline: Deadline, call: Callable[[], object], capture: _LogCapture) -> object:
    """``call()`` in a daemon thread, waited for until the deadline; ``_Late`` if it is not
    done by then. The thread holds ``capture`` until it ends, even after marketlib gives up."""
    left = deadline.remaining()
    if left <= 0:
        raise _Late()
    box: dict[str, object] = {}
    done = threading.Event()
    capture.hold()

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller, or dropped if it gave up
            box["error"] = exc
        finally:
            capture.release()
            done.set()

    threading.Thread(target=run, name="marketlib-yahoo", daemon=True).start()
    if not done.wait(left):
        raise _Late()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


class _BoundSession:
    """A yfinance HTTP session whose every request is cut to the time the deadline leaves,
    and refused once it is spent.

    yfinance keeps one session for all its calls (each ``download`` installs a new one);
    :meth:`close` puts back the one it had before, once nothing marketlib started still runs.
    """

    def __init__(self, deadline: Deadline) -> None:
        from yfinance import data as yf_data
        from yfinance._http import new_session

        self._yf_data, self._new_session = yf_data, new_session
        self.session = new_session()
        plain = self.session.request

        def request(*args, **kwargs):
            left = deadline.remaining() - deadline.grace
            if left <= 0.01:
                raise _DeadlineExceeded(f"marketlib deadline of {deadline.seconds:g} s passed")
            asked = kwargs.get("timeout")
            number = isinstance(asked, int | float) and not isinstance(asked, bool) and asked > 0
            kwargs["timeout"] = min(float(asked), left) if number else left
            return plain(*args, **kwargs)

        self.session.request = request
        self.session._marketlib_deadline = True
        holder = yf_data.YfData._instances.get(yf_data.YfData)
        previous = getattr(holder, "_session", None)
        self._previous = None if getattr(previous, "_marketlib_deadline", False) else previous

    def close(self) -> None:
        current = self._yf_data.YfData._instances.get(self._yf_data.YfData)
        if current is not None and getattr(current, "_session", None) is self.session:
            with contextlib.suppress(Exception):  # yfinance internals; never fail a download
                current._set_session(self._previous or self._new_session())


def _yfinance_download(deadline: Deadline, **kwargs) -> pd.DataFrame | None:
    import yfinance  # imported on use: the offline path never pays for it

    bound = _BoundSession(deadline)
    try:
        return yfinance.download(session=bound.session, **kwargs)
    finally:
        bound.close()


def normalise(frame: pd.DataFrame | None, symbols: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Split a ``yfinance.download`` answer into one date-indexed frame per symbol.

    Symbols that came back without a single price are absent from the result; the caller
    decides whether that is an error or a fallback.
    """
    if frame is None or frame.empty:
        return {}
    if not isinstance(frame.columns, pd.MultiIndex):
        if len(symbols) != 1:
            raise SourceUnavailableError(
                f"yfinance answered with flat columns for {len(symbols)} symbols: "
                "expected (Price, Ticker) columns; check the yfinance version"
            )
        frame = pd.concat({symbols[0]: frame}, axis=1).swaplevel(axis=1)
    fields = set(frame.columns.get_level_values(0))
    missing_fields = set(YAHOO_FIELDS) - fields
    if missing_fields:
        raise SourceUnavailableError(
            f"yfinance answered without the columns {sorted(missing_fields)} "
            f"(got {sorted(map(str, fields))}): download with auto_adjust=False"
        )
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        # Daily bars are stamped at midnight exchange time: the local date is the session.
        index = index.tz_localize(None)
    index = index.normalize().rename("date")
    if index.has_duplicates:
        raise SourceUnavailableError(
            f"yfinance answered with {len(index) - index.nunique()} extra bars on dates it "
            f"already had (first {index[index.duplicated()][0]:%Y-%m-%d}): intraday bars? "
            "download with interval='1d'"
        )
    result: dict[str, pd.DataFrame] = {}
    tickers = set(frame.columns.get_level_values(1))
    for symbol in symbols:
        if symbol not in tickers:
            continue
        one = frame.xs(symbol, axis=1, level=1)[list(YAHOO_FIELDS)].rename(columns=YAHOO_FIELDS)
        one.index = index
        one = one.apply(pd.to_numeric, errors="coerce").astype("float64")
        one = one.dropna(how="all", subset=["close", "adj_close"])
        if not one.empty:
            result[symbol] = one[PRICE_FIELDS].sort_index()
    return result


def download(
    symbols: Sequence[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
    deadline: Deadline | float | None = None,
    downloader: Downloader | None = None,
) -> dict[str, pd.DataFrame]:
    """Daily raw and adjusted prices for ``symbols`` from ``start`` to ``end`` inclusive.

    ``deadline`` (a :class:`Deadline`, or seconds; None: :func:`timeout_setting`) bounds the
    whole download, every batch and retry together; ``timeout`` bounds one request.

    Raises SourceUnavailableError naming every symbol not served and why (its ``reasons``:
    what Yahoo returned nothing for, the batch during which the download failed or the
    deadline passed, and the batches not asked for after it); its ``partial`` holds what had
    arrived.
    """
    from tqdm.auto import tqdm  # in a notebook this pulls in ipywidgets: only when downloading

    symbols = list(dict.fromkeys(check_symbol(s) for s in symbols))
    if downloader is None:
        # Imported before the clock starts (the import takes most of a second), and before the
        # filters are set: yfinance puts a filter of its own in front on import.
        import yfinance  # noqa: F401
    _ignore_yfinance_warnings()
    budget = as_deadline(deadline)
    span = f"{start:%Y-%m-%d}..{end:%Y-%m-%d}"
    received: dict[str, pd.DataFrame] = {}
    reasons: dict[str, tuple[str, str]] = {}
    late = False  # the deadline passed before every batch was answered
    # The bar counts symbols received, not batches asked; it is wiped when the download ends
    # (leave=False), so a failed download leaves no "100%" behind, and off a terminal it is off.
    quiet = True if len(symbols) <= 1 else None
    with tqdm(total=len(symbols), desc="yahoo", unit="symbol", disable=quiet, leave=False) as bar:
        for offset in range(0, len(symbols), SYMBOLS_PER_CALL):
            batch = symbols[offset : offset + SYMBOLS_PER_CALL]
            left = budget.remaining()
            if left <= budget.grace:  # no time for another batch: the rest is not served
                left = 0.0
            fetch = downloader or (lambda **kw: _yfinance_download(budget, **kw))
            kwargs = dict(
                tickers=batch,
                start=start.strftime("%Y-%m-%d"),
                end=(end + pd.Timedelta(days=1)).strftime("%Y-%m-%d"),  # end is exclusive
                interval="1d",
                auto_adjust=False,
                actions=False,
                group_by="column",
                multi_level_index=True,
                progress=False,
                threads=True,
                timeout=max(min(timeout, left), 0.001),
            )
            capture = _LogCapture()
            try:
                answer = _within(budget, lambda: fetch(**kwargs), capture)  # noqa: B023
            except _Late:  # this batch and the rest are not served: said with the others
                reasons.update({s: ("deadline", "") for s in symbols[offset:]})
                late = True
                break
            except Exception as exc:  # network stacks raise anything; the caller needs one type
                kind, _ = classify([f"{type(exc).__name__}: {exc}", *capture.messages])
                why = f"{type(exc).__name__}: {_excerpt(str(exc))}" + (
                    f"; {REASONS[kind]}" if kind != "no_reason" else ""
                )
                # Every symbol not served is named: those of earlier batches with their own
                # reasons, and those of the batches not asked for.
                earlier = [s for s in symbols[:offset] if s not in received]
                rest = symbols[offset + len(batch) :]
                said = {s: reasons[s] for s in earlier}
                also = f"; before it, {describe_reasons(said, budget, named=True)}" if said else ""
                also += f"; not asked for: {', '.join(rest)}" if rest else ""
                raise SourceUnavailableError(
                    f"the Yahoo download of {', '.join(batch)} failed ({why}){also}: "
                    "try again later or use --source snapshot",
                    partial=received,
                    reasons={s: reasons[s][0] for s in earlier} | {s: kind for s in batch},
                    why=why,
                ) from exc
            got = normalise(answer, batch)
            received.update(got)
            missing = [s for s in batch if s not in got]
            if missing:
                reasons.update(reasons_by_symbol(capture.messages, missing))
            bar.update(len(got))
    missing = [s for s in symbols if s not in received]
    if missing:
        why = describe_reasons({s: reasons[s] for s in missing}, budget)
        said = "did not serve" if late else "returned no prices for"
        raise SourceUnavailableError(
            f"Yahoo {said} {', '.join(missing)} ({span}): {why}; or use --source snapshot",
            partial=received,
            reasons={s: reasons[s][0] for s in missing},
            why=why,
        )
    return received


def _each(
    symbols: Sequence[str],
    work: Callable[[str], object],
    deadline: Deadline,
    when_all_ended: Callable[[], None] = lambda: None,
) -> tuple[dict[str, object], list[str]]:
    """``work(symbol)`` for every symbol, up to :data:`PARALLEL_TICKERS` at once in daemon
    threads, until the deadline: (symbol -> result or the exception raised, symbols not done).

    Once the deadline passes no new symbol is started; ``when_all_ended`` runs when the last
    thread ends (at once if none started).
    """
    symbols = list(dict.fromkeys(symbols))
    if not symbols or deadline.remaining() <= 0:
        when_all_ended()
        return {}, symbols
    results: dict[str, object] = {}
    queue = list(symbols)
    lock = threading.Lock()
    done = threading.Event()
    running = [min(PARALLEL_TICKERS, len(symbols))]

    def worker() -> None:
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    symbol = queue.pop(0)
                try:
                    value: object = work(symbol)
                except BaseException as exc:  # reported by the caller
                    value = exc
                with lock:
                    results[symbol] = value
                    if len(results) == len(symbols):
                        done.set()
        finally:
            with lock:
                running[0] -= 1
                last = running[0] == 0
            if last:
                when_all_ended()

    for _ in range(running[0]):
        threading.Thread(target=worker, name="marketlib-yahoo-ticker", daemon=True).start()
    done.wait(deadline.remaining())
    with lock:
        queue.clear()
        finished = dict(results)
    return finished, [s for s in symbols if s not in finished]


def _run_tickers(
    symbols: Sequence[str],
    work: Callable[[object, str], object],
    tickers: TickerFactory | None,
    deadline: Deadline | float | None,
    what: str,
) -> dict[str, object]:
    """``work(ticker, symbol)`` for each symbol within the deadline; one warning names the
    symbols the deadline left out. Exceptions are returned in place of results."""
    for symbol in symbols:
        check_symbol(symbol)
    if tickers is None:
        import yfinance  # before the clock and the warnings filters, as in :func:`download`
    _ignore_yfinance_warnings()
    budget = as_deadline(deadline)
    capture = _LogCapture()
    if tickers is None:
        bound = _BoundSession(budget)
        session = bound.session

        def make(symbol: str) -> object:
            return yfinance.Ticker(symbol, session=session)

        def ended() -> None:
            bound.close()
            capture.release()
    else:
        make = tickers

        def ended() -> None:
            capture.release()

    capture.hold()  # released by ended(), when the last thread ends
    results, late = _each(symbols, lambda s: work(make(s), s), budget, ended)
    if late:
        log.warning(
            "Yahoo gave no %s for %s: %s",
            what,
            ", ".join(late),
            REASONS["deadline"].format(deadline=budget.label()),
        )
    return results


def _failure(exc: BaseException) -> str:
    kind, _ = classify([f"{type(exc).__name__}: {exc}"])
    said = f"; {REASONS[kind].split(':')[0]}" if kind not in ("no_reason", "unknown_symbol") else ""
    return f"{type(exc).__name__}: {_excerpt(str(exc))}{said}"


def _answered(answers: dict, symbols: Sequence[str], what: str) -> Iterator[tuple[str, object]]:
    """Each symbol's answer from :func:`_run_tickers`, in order, once; unanswered symbols are
    skipped and failures logged (one warning each, naming ``what`` was asked)."""
    for symbol in dict.fromkeys(symbols):
        answer = answers.get(symbol)
        if isinstance(answer, BaseException):
            log.warning("Yahoo gave no %s for %s (%s)", what, symbol, _failure(answer))
        elif symbol in answers:
            yield symbol, answer


def listing_facts(
    symbols: Sequence[str],
    tickers: TickerFactory | None = None,
    deadline: Deadline | float | None = None,
) -> dict[str, tuple[Listing, str]]:
    """Listing facts of symbols no registry holds, from ``Ticker.info`` (exchange, currency,
    quote type, name, country). A symbol Yahoo describes on an exchange or with a quote type
    marketlib cannot map, or that the deadline leaves unanswered, is left out (with a
    warning); the caller reports it as unknown."""
    answers = _run_tickers(
        symbols, lambda ticker, _s: dict(ticker.info or {}), tickers, deadline, "listing facts"
    )
    facts: dict[str, tuple[Listing, str]] = {}
    for symbol, info in _answered(answers, symbols, "listing facts"):
        assert isinstance(info, dict)
        role = YAHOO_ROLES.get(str(info.get("quoteType", "")).upper())
        venue = YAHOO_EXCHANGES.get(str(info.get("exchange", "")))
        currency = info.get("currency")
        if role is None or not currency or (venue is None and role != "fx"):
            log.warning(
                "Yahoo describes %s as %s on exchange %r: marketlib has no calendar for it",
                symbol,
                info.get("quoteType"),
                info.get("exchange"),
            )
            continue
        mic, calendar = venue if venue else (None, None)
        name = str(info.get("longName") or info.get("shortName") or symbol)
        listing = Listing(
            symbol=symbol,
            firm=symbol.lower() if role == "equity" else None,
            name=name,
            exchange=mic,
            calendar=calendar,
            currency=str(currency).upper(),
            share_class="common" if role == "equity" else None,
            role=role,
            origin=f"Yahoo listing facts (Ticker.info: exchange {info.get('exchange')}, "
            f"currency {currency}, quoteType {info.get('quoteType')})",
        )
        facts[symbol] = (listing, str(info.get("country") or "unknown"))
    return facts


def shares_history(
    symbols: Sequence[str],
    tickers: TickerFactory | None = None,
    start: str = "2000-01-01",
    deadline: Deadline | float | None = None,
) -> pd.DataFrame:
    """Shares outstanding over time from ``Ticker.get_shares_full`` as a shares table.

    yfinance answers a Series of share counts indexed by tz-aware timestamps in the listing's
    zone (or None); each count is dated by its local date, the last count of a day kept, and
    labelled as Yahoo's (quality ``yahoo-reported``), never as an audited filing figure.
    Symbols the deadline leaves unanswered have no rows (with one warning naming them).
    """
    answers = _run_tickers(
        symbols,
        lambda ticker, _s: ticker.get_shares_full(start=start),
        tickers,
        deadline,
        "share counts",
    )
    rows = []
    for symbol, series in _answered(answers, symbols, "share counts"):
        if series is None or len(series) == 0:  # type: ignore[arg-type]
            continue
        index = pd.DatetimeIndex(series.index)  # type: ignore[attr-defined]
        local = index.tz_localize(None) if index.tz is not None else index
        counts = pd.Series(
            pd.to_numeric(series.to_numpy(), errors="coerce"),  # type: ignore[attr-defined]
            index=local.normalize(),
        )
        counts = counts[counts > 0]
        counts = counts[~counts.index.duplicated(keep="last")].sort_index()
        for day, shares in counts.items():
            rows.append(
                {
                    "symbol": symbol,
                    "share_class": "yahoo_shares_out",
                    "shares": float(shares),
                    "as_of": day,
                    "role": "PRIMARY",
                    "quality": "yahoo-reported",
                    "as_of_precision": "day",
                    "as_of_note": f"Yahoo shares_out dated {day:%Y-%m-%d}",
                    "source_document": "Yahoo Finance fundamentals timeseries (yfinance "
                    "Ticker.get_shares_full)",
                    "source_url_or_repo_path": f"https://finance.yahoo.com/quote/{symbol}",
                    "note": "fetched live; not an audited filing figure",
                }
            )
    frame = pd.DataFrame(rows, columns=TABLES["shares"].columns)
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    frame["shares"] = frame["shares"].astype("float64")
    return frame
