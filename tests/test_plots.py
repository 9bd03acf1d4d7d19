"""Each chart on a small SYNTHETIC frame: a Figure with the expected marks and labelled axes."""

import pandas as pd
import pytest

from marketlib.errors import InvalidInputError


@pytest.fixture(scope="module")
def plots():
    """marketlib.plots, imported by the worker that runs these tests: at collection, every
    worker would import matplotlib (0.45 s of CPU each) for one worker's tests."""
    from marketlib import plots

    return plots


DATES = pd.to_datetime(["2025-01-23", "2025-01-24", "2025-01-27", "2025-01-28"])
SYNTHETIC = pd.DataFrame(
    {"AAA": [101.0, 100.0, 83.0, 90.0], "BBB": [99.0, 100.0, 98.0, 99.0]}, index=DATES
)
EVENT = ("2025-01-27", "SYNTHETIC event")
NOTE = "Source: SYNTHETIC test data"


def labelled(ax):
    return bool(ax.get_ylabel()) and bool(ax.get_title(loc="left"))


def footnotes(fig):
    return [t.get_text() for t in fig.texts]


def event_marked(ax, label=EVENT[1]):
    """The event's label is written on the axes and a vertical line stands on its date."""
    vertical = [
        line
        for line in ax.lines
        if len(set(line.get_xdata())) == 1 and pd.Timestamp(line.get_xdata()[0]) == DATES[2]
    ]
    return any(t.get_text() == label for t in ax.texts) and bool(vertical)


def recovery_table():
    return pd.DataFrame(
        {
            "symbol": ["AAA", "BBB"],
            "sessions": [None, 12],
            "checked_through": pd.to_datetime(["2025-06-30"] * 2),
        }
    )


def test_price_paths_draws_one_line_per_column(plots):
    from matplotlib.figure import Figure

    fig = plots.price_paths(SYNTHETIC, "2025-01-24", EVENT, "synthetic", NOTE)
    ax = fig.axes[0]
    assert (
        isinstance(fig, Figure)
        and len([line for line in ax.lines if line.get_label() in SYNTHETIC]) == 2
    )
    assert labelled(ax) and ax.get_xlabel()
    assert event_marked(ax) and NOTE in footnotes(fig)


def test_waterfall_has_a_bar_per_firm_plus_total_and_the_claim_line(plots):
    changes = pd.Series({"Firm A": -500e9, "Firm B": 20e9, "Firm C": -100e9})
    fig = plots.waterfall(changes, "synthetic", NOTE, 1.5e12)
    ax = fig.axes[0]
    assert len(ax.patches) == 4
    total_bar = ax.patches[-1]
    assert total_bar.get_height() == pytest.approx(-580e9)
    assert any(line.get_ydata()[0] == -1.5e12 for line in ax.lines)
    assert labelled(ax) and plots.dollars(-1.5e12) == "-$1.5tn"
    assert NOTE in footnotes(fig)


def test_verdict_heatmap_labels_each_cell_with_dollars(plots):
    matrix = pd.DataFrame(
        {
            "group": ["u1", "u1", "u2", "u2", "u2"],
            "domicile": ["US", "US", "any", "any", "any"],
            "window": ["w1", "w2", "w1", "w2", "w2, before 3 Mar"],
            "window_name": ["w1", "w2", "w1", "w2", "w2_before_x"],
            "variant_of": ["", "", "", "", "w2"],
            "measure": "net",
            "change_usd": [-1e12, -2e12, -5e11, -1.5e12, -1.4e12],
            "share_of_claim": [2 / 3, 4 / 3, 1 / 3, 1.0, 1.4 / 1.5],
            "verdict": ["does_not_support", "does_not_support", "does_not_support", "supports",
                        "inconclusive"],
            "confounders": [[], ["x"], [], ["x"], []],
        }
    )  # fmt: skip
    fig = plots.verdict_heatmap(matrix, "net", 1.5e12, NOTE)
    texts = [t.get_text() for t in fig.axes[0].texts]
    # u1 has no stopped variant of w2: its cell says so
    assert len(texts) == 6 and "-$500bn\n33%\n" in texts and "-" in texts
    assert "-$1.5tn\n100%\nsupports" in texts and "-$1.4tn\n93%\ninconclusive" in texts
    assert fig.axes[0].get_xlabel() == "Window"
    assert fig.axes[0].get_ylabel() == "Group (domicile)"
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["u1 (US)", "u2 (any)"]
    columns = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert columns == ["w1", "w2\n(spans other news)", "w2\nbefore other news"]
    assert NOTE in footnotes(fig)


def test_cumulative_change_has_one_line_per_group(plots):
    totals = pd.DataFrame({"u1": [0.0, -1e12], "u2": [0.0, -2e12]}, index=DATES[1:3])
    fig = plots.cumulative_change(totals, EVENT, 1.5e12, "XNYS", NOTE)
    ax = fig.axes[0]
    assert {line.get_label() for line in ax.lines} >= {"u1", "u2"}
    assert labelled(ax) and "XNYS" in ax.get_xlabel()
    assert any(line.get_ydata()[0] == -1.5e12 for line in ax.lines)
    assert event_marked(ax) and NOTE in footnotes(fig)


def test_venue_timing_has_a_panel_per_venue(plots):
    fig = plots.venue_timing(
        {"New York": SYNTHETIC, "Tokyo": SYNTHETIC[["AAA"]]}, "2025-01-24", EVENT, NOTE
    )
    assert len(fig.axes) == 2 and fig.axes[0].get_ylabel()
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["New York", "Tokyo"]
    assert all(event_marked(ax) for ax in fig.axes) and NOTE in footnotes(fig)


def test_recovery_marks_firms_that_did_not_recover(plots):
    fig = plots.recovery(recovery_table(), "2025-01-24", NOTE)
    ax = fig.axes[0]
    assert len(ax.patches) == 2
    assert any("not by 30 Jun 2025" in t.get_text() for t in ax.texts)
    assert ax.get_xlabel()
    assert NOTE in footnotes(fig)


def test_save_figure_writes_one_png_unless_asked_for_svg_and_no_dates(plots, tmp_path):
    fig = plots.price_paths(SYNTHETIC, "2025-01-24", EVENT, "synthetic", NOTE)
    (png,) = plots.save_figure(fig, "synthetic", tmp_path)
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic.png"]
    fig = plots.price_paths(SYNTHETIC, "2025-01-24", EVENT, "synthetic", NOTE)
    png, svg = plots.save_figure(fig, "both", tmp_path, formats=("png", "svg"))
    assert svg.read_bytes().lstrip().startswith(b"<?xml") and b"<svg" in svg.read_bytes()
    assert b"<dc:date>" not in svg.read_bytes()


def test_save_figure_refuses_a_format_it_does_not_write(plots, tmp_path):
    import matplotlib.pyplot as plt

    fig = plots.price_paths(SYNTHETIC, "2025-01-24", EVENT, "synthetic", NOTE)
    with pytest.raises(InvalidInputError, match="'pdf' is not one marketlib writes: use png"):
        plots.save_figure(fig, "synthetic", tmp_path, formats=("pdf",))
    assert list(tmp_path.iterdir()) == [] and not plt.fignum_exists(fig.number)
    fig = plots.price_paths(SYNTHETIC, "2025-01-24", EVENT, "synthetic", NOTE)
    (svg,) = plots.save_figure(fig, "alone", tmp_path, formats="svg")  # one name, not letters
    assert svg.name == "alone.svg"


def test_series_on_different_calendars_are_drawn_as_continuous_lines(plots):
    mixed = SYNTHETIC.copy()
    mixed.loc[DATES[1], "AAA"] = float("nan")  # AAA has no session that day
    fig = plots.price_paths(mixed, "2025-01-24", EVENT, "synthetic", NOTE)
    aaa = next(line for line in fig.axes[0].lines if line.get_label() == "AAA")
    assert len(aaa.get_ydata()) == 3 and not pd.isna(aaa.get_ydata()).any()


def test_car_paths_draws_one_banded_panel_per_listing(plots):
    from scipy import stats  # seconds to import: only in the tests that use it

    paths = pd.DataFrame(
        {
            "symbol": ["SYN_A"] * 3 + ["SYN_B"] * 3,
            "benchmark": "SYN_MARKET",
            "relative_day": [-1, 0, 1] * 2,
            "date": list(DATES[1:]) * 2,
            "car": [0.0, -0.1, -0.12, 0.01, 0.0, 0.02],
            "standard_error": [0.01, 0.014, 0.017] * 2,
            "dof": 238,
        }
    )
    # The band columns as events.car_paths adds them: the 95% Student t interval.
    half = stats.t.ppf(0.975, paths["dof"]) * paths["standard_error"]
    paths["ci_low"], paths["ci_high"], paths["confidence"] = (
        paths.car - half,
        paths.car + half,
        0.95,
    )
    fig = plots.car_paths(paths, NOTE)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title(loc="left") for ax in visible] == [
        "SYN_A vs SYN_MARKET",
        "SYN_B vs SYN_MARKET",
    ]
    band = visible[0].collections[0].get_paths()[0].vertices[:, 1]
    half_width = 100 * 1.96 * 0.017  # t(238) ~ normal at 95%
    assert band.min() == pytest.approx(-12 - half_width, abs=0.05)
    assert visible[0].lines[0].get_ydata()[1] == pytest.approx(-10.0)
    assert any(text.startswith(NOTE) and "95% interval" in text for text in footnotes(fig))


def test_group_significance_stars_cells_by_bmp_p_value(plots):
    tests = pd.DataFrame(
        {
            "group": ["g1", "g1", "g2", "g2"],
            "window": ["[0,0]", "[0,1]", "[0,0]", "[0,1]"],
            "mean_car": [-0.05, -0.02, 0.01, -0.1],
            "bmp_p": [0.001, 0.2, 0.07, 0.03],
        }
    )
    fig = plots.group_significance(tests, NOTE)
    assert [t.get_text() for t in fig.axes[0].texts] == ["-5.0%***", "-2.0%", "+1.0%*", "-10.0%**"]
    assert any(text.startswith(NOTE) for text in footnotes(fig))


def test_a_chart_given_an_axes_draws_on_it_and_returns_its_figure(plots):
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2)
    try:
        drawn = plots.recovery(recovery_table(), "2025-01-24", NOTE, ax=right)
        assert drawn is fig
        assert len(right.patches) == 2 and right.get_xlabel()
        assert len(left.patches) == 0 and not left.lines and not left.get_title(loc="left")
        drawn = plots.price_paths(SYNTHETIC, "2025-01-24", EVENT, "synthetic", NOTE, ax=left)
        assert drawn is fig
        assert {line.get_label() for line in left.lines} >= {"AAA", "BBB"}
        assert not right.lines  # the first chart's axes is left alone
    finally:
        plt.close(fig)
