"""Write a SYNTHETIC study to disk: a study file, its own universe file and a data folder in the
bundle's schema, for N listings x 2,520 XNYS sessions (``make bench`` builds 500 and 5,000).

Nothing here is market data. The series are random walks driven by a synthetic market index
(``^SYNIDX``, the study's own XNYS benchmark), with what real data of a whole market has:

- firms with two listings (two share classes valued at two prices, like Alphabet);
- listings that start late (listed mid-decade) or stop early (delisted), and missing sessions;
- dividend-adjusted-only files (``close`` absent) with raw-close anchors, some missing (those
  stretches are valued on the adjusted level and say so), some marked low confidence;
- quarterly ex-dividend dates, a few splits, quarterly shares-outstanding facts with a few
  rounded ones, a few facts that start after the first session, and non-PRIMARY rows;
- a shock on the event day to one group, so the event study has something to find.

The study file reads every session: its longest window runs from the first session to the
base date, so valuation covers the whole decade for every listing.

Usage: ``python benchmarks/synthetic.py --listings 500 --out DIR`` (prints ``{"study": path}``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

N_SESSIONS = 2520
LAST_DATE = "2025-06-30"
SEED = 14
QUARTER = 63  # sessions between quarterly dates
VERSION = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def xnys_sessions() -> pd.DatetimeIndex:
    import exchange_calendars as xcals

    calendar = xcals.get_calendar("XNYS", start="2010-01-04")
    days = calendar.sessions_in_range("2010-01-04", LAST_DATE)
    return pd.DatetimeIndex(days[-N_SESSIONS:]).tz_localize(None)


def _format(values: np.ndarray) -> np.ndarray:
    """Prices as text with 4 decimals; NaN as an empty cell."""
    text = np.char.mod("%.4f", np.nan_to_num(values, nan=0.0)).astype(object)
    text[np.isnan(values)] = ""
    return text


def _write_csv(path: Path, header: str, columns: list[np.ndarray]) -> None:
    rows = columns[0]
    for column in columns[1:]:
        rows = rows + "," + column
    path.write_text(header + "\n" + "\n".join(rows.tolist()) + "\n")


class Market:
    """The synthetic market: every array the files are written from, drawn once from a seed."""

    def __init__(self, n_listings: int, seed: int = SEED) -> None:
        rng = np.random.default_rng(seed)
        self.dates = xnys_sessions()
        n, t = n_listings, N_SESSIONS
        self.n = n
        self.symbols = np.array([f"SYN{i + 1:05d}" for i in range(n)], dtype=object)
        pairs = n // 10  # listings 0..2*pairs-1 form two-listing firms (class A and class C)
        self.pairs = pairs
        firm_index = np.where(np.arange(n) < 2 * pairs, np.arange(n) // 2, np.arange(n) - pairs)
        self.firm_ids = np.array([f"synfirm{k + 1:05d}" for k in firm_index], dtype=object)
        self.share_class = np.where(
            np.arange(n) < 2 * pairs,
            np.where(np.arange(n) % 2 == 0, "class_A", "class_C"),
            "common",
        ).astype(object)
        n_firms = n - pairs
        # Spans: 5% of firms list late, 1% delist early; both listings of a firm share the span.
        first = np.zeros(n_firms, int)
        last = np.full(n_firms, t - 1)
        late = rng.random(n_firms) < 0.05
        first[late] = rng.integers(100, 1500, late.sum())
        early = ~late & (rng.random(n_firms) < 0.01)
        last[early] = rng.integers(1800, 2400, early.sum())
        self.first, self.last = first[firm_index], last[firm_index]
        # Returns: beta x market + noise; the event day hits the "tenth" group.
        self.event_at = t - 31
        market = rng.normal(0.0003, 0.01, t)
        market[self.event_at] = -0.03
        beta = rng.uniform(0.5, 1.5, n)
        noise = rng.normal(0.0, 0.015, (t, n))
        noise[self.event_at, : max(n // 10, 1)] -= 0.08
        log_returns = beta[None, :] * market[:, None] + noise
        self.index_level = 1000.0 * np.exp(np.cumsum(market))
        base_price = rng.uniform(10.0, 300.0, n)
        # Splits (3%): one each; the raw close falls by the ratio on the effective date.
        self.split_at = np.full(n, -1)
        splits = rng.random(n) < 0.03
        self.split_at[splits] = rng.integers(200, t - 100, splits.sum())
        self.split_ratio = np.where(splits, rng.choice([2.0, 3.0, 4.0], n), 1.0)
        rows = np.arange(t)[:, None]
        after_split = (self.split_at[None, :] >= 0) & (rows >= self.split_at[None, :])
        raw = base_price[None, :] * np.exp(np.cumsum(log_returns, axis=0))
        raw = np.where(after_split, raw / self.split_ratio[None, :], raw)
        # Dividends (half the listings): quarterly ex-dates, 0.5% of the close each.
        self.payer = rng.random(n) < 0.5
        self.ex_offset = rng.integers(0, QUARTER, n)
        ex_date = self.payer[None, :] & (rows % QUARTER == self.ex_offset[None, :]) & (rows > 0)
        future_ex = np.cumsum(ex_date[::-1], axis=0)[::-1] - ex_date  # ex-dates after each row
        dividend_factor = 0.995**future_ex  # adj < raw before every later ex-date
        split_basis = np.where(after_split, 1.0, self.split_ratio[None, :])  # to today's basis
        adjusted = raw / split_basis * dividend_factor
        self.raw, self.adjusted, self.ex_date = np.round(raw, 4), np.round(adjusted, 4), ex_date
        # Which sessions each file holds: its span, less 0.05% missing sessions.
        held = (rows >= self.first[None, :]) & (rows <= self.last[None, :])
        held &= rng.random((t, n)) >= 0.0005
        self.held = held
        # 15% of the files have only the adjusted close (raw rebuilt from anchors).
        self.adjusted_only = rng.random(n) < 0.15
        self.rng = rng

    # ------------------------------------------------------------------ files

    def write_prices(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        date_text = np.array([f"{d:%Y-%m-%d}" for d in self.dates], dtype=object)
        raw_text, adjusted_text = _format(self.raw), _format(self.adjusted)
        for i, symbol in enumerate(self.symbols):
            keep = self.held[:, i]
            if self.adjusted_only[i]:
                _write_csv(
                    folder / f"{symbol}.csv",
                    "date,adj_close",
                    [date_text[keep], adjusted_text[keep, i]],
                )
            else:
                _write_csv(
                    folder / f"{symbol}.csv",
                    "date,close,adj_close",
                    [date_text[keep], raw_text[keep, i], adjusted_text[keep, i]],
                )
        index = _format(np.round(self.index_level, 4))
        _write_csv(folder / "^SYNIDX.csv", "date,close", [date_text, index])

    def shares_table(self) -> pd.DataFrame:
        """Quarterly PRIMARY facts per class on the split basis of their date; a few rounded,
        a few starting after the listing's first session, a few non-PRIMARY rows."""
        rng = self.rng
        rows = []
        classes = []
        for i in range(self.n):
            if self.share_class[i] == "class_A":
                classes.append((i, "class_A"))
                classes.append((i, "class_B"))
            else:
                classes.append((i, self.share_class[i]))
        for i, share_class in classes:
            base = rng.uniform(5e7, 5e9)
            offset = int(rng.integers(0, QUARTER))
            start = self.first[i] + (QUARTER if rng.random() < 0.02 else 0)  # 2%: first fact late
            positions = np.arange(start - QUARTER + offset, self.last[i] + 1, QUARTER)
            positions = positions[positions < N_SESSIONS]
            growth = np.cumprod(1 + rng.normal(0.0, 0.005, len(positions)))
            for position, g in zip(positions, growth, strict=True):
                as_of = (
                    self.dates[position]
                    if position >= 0
                    else self.dates[0] - pd.Timedelta(days=int(-position * 1.45))
                )
                shares = base * g
                if self.split_at[i] >= 0 and position >= self.split_at[i]:
                    shares *= self.split_ratio[i]
                rounded = rng.random() < 0.1
                rows.append(
                    (
                        self.symbols[i],
                        share_class,
                        round(shares, -6) if rounded else round(shares),
                        as_of,
                        "PRIMARY",
                        "rounded" if rounded else "exact",
                    )
                )
            if rng.random() < 0.05:
                rows.append((self.symbols[i], share_class, round(base * 1.1), self.dates[0],
                             "ALT", "exact"))  # fmt: skip
        frame = pd.DataFrame(
            rows, columns=["symbol", "share_class", "shares", "as_of", "role", "quality"]
        )
        frame["shares"] = frame["shares"].astype("int64")
        return frame

    def dividends_table(self) -> pd.DataFrame:
        at, i = np.nonzero(self.ex_date)
        return pd.DataFrame(
            {
                "symbol": self.symbols[i],
                "ex_date": self.dates[at],
                "amount": np.round(self.raw[at - 1, i] * 0.005, 4),
                "currency": "USD",
            }
        ).sort_values(["symbol", "ex_date"], ignore_index=True)

    def splits_table(self) -> pd.DataFrame:
        i = np.flatnonzero(self.split_at >= 0)
        return pd.DataFrame(
            {
                "symbol": self.symbols[i],
                "effective_date": self.dates[self.split_at[i]],
                "ratio": self.split_ratio[i],
                "source": "SYNTHETIC",
            }
        )

    def anchors_table(self) -> pd.DataFrame:
        """For adjusted-only files: one raw close per stretch between ex-dates and splits, on a
        session the file holds; 10% of the stretches have none, 5% are low confidence."""
        rng = self.rng
        rows = []
        for i in np.flatnonzero(self.adjusted_only):
            boundary = self.ex_date[:, i].copy()
            if self.split_at[i] >= 0:
                boundary[self.split_at[i]] = True
            stretch = np.cumsum(boundary)
            held = np.flatnonzero(self.held[:, i])
            for k in np.unique(stretch[held]):
                if rng.random() < 0.1:
                    continue
                choices = held[stretch[held] == k]
                at = int(rng.choice(choices))
                note = "LOW CONFIDENCE: SYNTHETIC" if rng.random() < 0.05 else "SYNTHETIC"
                rows.append((self.symbols[i], self.dates[at], self.raw[at, i], "USD", note))
        return pd.DataFrame(rows, columns=["symbol", "date", "raw_close", "currency", "note"])

    # ------------------------------------------------------------------ registry and study

    def universe_text(self) -> str:
        lines = [
            "# SYNTHETIC universe written by benchmarks/synthetic.py: not market data.",
            '[instruments."^SYNIDX"]',
            'name = "SYNTHETIC market index"',
            'calendar = "XNYS"',
            'currency = "USD"',
            'role = "index"',
            "",
            "[benchmarks]",
            'XNYS = "^SYNIDX"',
            "",
        ]
        for i, symbol in enumerate(self.symbols):
            firm = self.firm_ids[i]
            share_class = self.share_class[i]
            extra = ""
            if share_class == "class_A":
                extra = ', cap_classes = ["class_A", "class_B"]'
            if share_class == "class_A" or share_class == "common":
                lines += [f"[firms.{firm}]", f'name = "SYNTHETIC firm {firm[7:]}"',
                          'country = "US"', "listings = ["]  # fmt: skip
            lines.append(
                f'  {{ symbol = "{symbol}", exchange = "XNYS", calendar = "XNYS", currency = '
                f'"USD", share_class = "{share_class}", role = "equity"{extra} }},'
            )
            if share_class != "class_A":
                lines += ["]", ""]
        firms = list(dict.fromkeys(self.firm_ids))
        lines += ["[groups]"]
        for name, chosen in (
            ("synthetic_market", firms),
            ("synthetic_half", firms[: len(firms) // 2]),
            ("synthetic_tenth", list(dict.fromkeys(self.firm_ids[: max(self.n // 10, 1)]))),
        ):
            lines.append(f"{name} = [" + ", ".join(f'"{f}"' for f in chosen) + "]")
        return "\n".join(lines) + "\n"

    def study_text(self) -> str:
        d = self.dates
        event, base = d[self.event_at], d[self.event_at - 1]
        decade_start = d[0] + pd.Timedelta(days=24)  # with the lookback and margin: session 0
        return f"""# SYNTHETIC study written by benchmarks/synthetic.py: not market data.
format = 1
title = "SYNTHETIC market: {self.n:,} listings x {N_SESSIONS:,} sessions (benchmark, not data)"
event_date = "{event:%Y-%m-%d}"
base_date = "{base:%Y-%m-%d}"
event_label = "SYNTHETIC shock"
universe = "universe.toml"
data = "data"

[groups]
market = ["synthetic_market"]
half = ["synthetic_half"]
tenth = ["synthetic_tenth"]

[windows.one_day]
label = "SYNTHETIC one day"
kind = "fixed"
start = "{base:%Y-%m-%d}"
end = "{event:%Y-%m-%d}"

[windows.to_trough]
label = "SYNTHETIC base -> trough"
kind = "to_trough"
start = "{base:%Y-%m-%d}"
trough_through = "{d[self.event_at + 10]:%Y-%m-%d}"

[windows.peak_to_trough]
label = "SYNTHETIC peak -> trough"
kind = "peak_to_trough"
peak_from = "{d[self.event_at - 6]:%Y-%m-%d}"
start = "{base:%Y-%m-%d}"
trough_through = "{d[self.event_at + 10]:%Y-%m-%d}"

[windows.decade]
label = "SYNTHETIC decade"
kind = "fixed"
start = "{decade_start:%Y-%m-%d}"
end = "{base:%Y-%m-%d}"

[[claims]]
id = "synthetic_market_loss"
quote = "SYNTHETIC: the market lost two trillion dollars"
checkable = true
how = "SYNTHETIC: the change of each group over each window."
amount_usd = 2.0e12
[claims.verdict]
groups = ["market", "half", "tenth"]
windows = ["one_day", "to_trough", "peak_to_trough", "decade"]
measures = ["net", "gross_losses"]
support_low_usd = 1.8e12
support_high_usd = 2.2e12

[[claims]]
id = "synthetic_mood"
quote = "SYNTHETIC: traders were gloomy"
checkable = false
why = "SYNTHETIC: a mood is not a price."

[event_study]
estimation = [-250, -11]
windows = [[0, 0], [0, 1], [-1, 1], [0, 5], [0, 10]]
path = [-5, 10]
groups = ["market"]
focus = "market"
"""

    def write(self, root: Path) -> Path:
        data = root / "data"
        self.write_prices(data / "prices")
        tables = {
            "shares_outstanding.csv": self.shares_table(),
            "dividends.csv": self.dividends_table(),
            "splits.csv": self.splits_table(),
            "raw_close_anchors.csv": self.anchors_table(),
        }
        for name, frame in tables.items():
            frame.to_csv(data / name, index=False, date_format="%Y-%m-%d")
        (root / "universe.toml").write_text(self.universe_text())
        study = root / "synthetic.toml"
        study.write_text(self.study_text())
        return study


def synthetic_study(n_listings: int, out: Path, seed: int = SEED) -> Path:
    """The study file of a SYNTHETIC market of ``n_listings`` under ``out`` (written once per
    generator version, size and seed; a stamp file says which)."""
    root = Path(out) / f"synthetic-{n_listings}"
    stamp = root / "SYNTHETIC.stamp"
    key = f"{VERSION} {n_listings} {N_SESSIONS} {seed}\n"
    if stamp.is_file() and stamp.read_text() == key:
        return root / "synthetic.toml"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    study = Market(n_listings, seed).write(root)
    stamp.write_text(key)
    return study


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps({"study": str(synthetic_study(args.listings, args.out))}))
