"""Write the numbered notebooks from the cell texts below (run once; the .ipynb files are committed).

Kept so that a change to the narrative is a reviewed diff of plain Python strings.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

PARAMETERS = '''# Parameters (papermill overrides these; `marketlib report` passes absolute paths)
event_date = "2025-01-27"
base_date = "2025-01-24"
universe = "named"
source = "snapshot"
figures_dir = "../figures"'''

SETUP = """import marketlib
from marketlib import claims, notebook, plots, returns

params = notebook.check_parameters(event_date=event_date, base_date=base_date,
                                   universe=universe, source=source, figures_dir=figures_dir)"""


def code(text: str):
    return new_code_cell(text.strip())


def md(text: str):
    return new_markdown_cell(text.strip())


def parameters():
    cell = code(PARAMETERS)
    cell.metadata["tags"] = ["parameters"]
    return cell


CELLS = {
    "01_universe_and_data": [
        md("""# 1. The universe and the data

The article names seven listed firms (and five private ones that no price can reach). This
notebook shows who is in each universe, what the bundled snapshot of real prices covers, and
where its prices are adjusted rather than as traded."""),
        parameters(),
        code(SETUP),
        md("## Firms and listings"),
        code("notebook.universe_table()"),
        md("Named in the article, but private: nothing to price."),
        code("notebook.private_table()"),
        md("""## What the snapshot holds

`close_basis` matters: where only dividend-adjusted closes exist, market values are rebuilt
from raw-close anchors (see notebook 3)."""),
        code("notebook.coverage_table()"),
        md("## Prices of the named firms and the benchmarks, January to February 2025"),
        code("""prices = marketlib.load_prices([params.universe, "^GSPC", "^IXIC", "^SOX"], "2025-01-02", "2025-02-28", source=params.source)
rebased = returns.normalised(returns.wide(prices).drop(columns="SFTBY"), params.base_date)
fig = plots.price_paths(rebased, params.event_date, "Named firms and benchmarks around the DeepSeek R1 sell-off", "dividend-adjusted closes; index levels")
plots.save_figure(fig, "01_price_paths", params.figures_dir)
fig"""),
    ],
    "02_the_january_27_drawdown": [
        md("""# 2. The 27 January drawdown

On Monday 27 January 2025 US technology shares fell after DeepSeek's R1 release drew attention
over the weekend. Here is the one-day change in market value of each named firm, and the
timing in Tokyo, where the reaction fell on 27 and 28 January."""),
        parameters(),
        code(SETUP),
        md("## Market value change, 24 → 27 January, per firm"),
        code("""changes = claims.cap_changes(params.universe, params.base_date, params.event_date, source=params.source)
notebook.caps_table(changes)"""),
        code("""fig = plots.waterfall(notebook.by_firm_name(changes), f"Market value change on {params.event_date:%d %b %Y}: {params.universe} firms", notebook.basis_summary(changes))
plots.save_figure(fig, "02_waterfall_one_day", params.figures_dir)
fig"""),
        md("## New York and Tokyo on their own sessions"),
        code("""panels = notebook.venue_panels(["NVDA", "AVGO", "^GSPC"], ["9984.T", "6857.T", "8035.T", "^N225"], params.base_date, source=params.source)
fig = plots.venue_timing(panels, params.event_date)
plots.save_figure(fig, "02_venue_timing", params.figures_dir)
fig"""),
    ],
    "03_the_1_5_trillion_claim": [
        md("""# 3. "Nearly $1.5 trillion"?

The answer depends on which firms and which days are counted. The definitions live in
`seeds/claims.toml`; every cell below is computed from snapshot prices and sourced share
counts."""),
        parameters(),
        code(SETUP),
        md("## Every numeric claim in the article"),
        code("claims.claims_table(claims.load_claims())"),
        md("## The verdict matrix"),
        code("""matrix = claims.evaluate(source=params.source)
claims.matrix_table(matrix)"""),
        code("""for measure in ["net", "gross_losses"]:
    fig = plots.verdict_heatmap(matrix, measure)
    plots.save_figure(fig, f"03_verdict_heatmap_{measure}", params.figures_dir)
fig"""),
        md("## Day by day"),
        code("""totals = claims.cumulative_changes(claims.load_claims()["verdict"]["universes"], params.base_date, "2025-02-28", source=params.source)
fig = plots.cumulative_change(totals, params.event_date)
plots.save_figure(fig, "03_cumulative_change", params.figures_dir)
fig"""),
        md("## Verdict"),
        code("print(claims.verdict_paragraph(matrix))"),
    ],
    "04_recovery": [
        md("""# 4. Recovery

How long did each firm take to regain its 24 January close? The snapshot runs to 30 June
2025; a firm that had not recovered by then is marked so, not extrapolated."""),
        parameters(),
        code(SETUP),
        code("""prices = marketlib.load_prices(["ai_complex", "japan"], params.base_date, "2025-06-30", source=params.source)
table = returns.recovery_table(returns.wide(prices), params.base_date)
table"""),
        code("""fig = plots.recovery(table, "30 Jun 2025")
plots.save_figure(fig, "04_recovery", params.figures_dir)
fig"""),
    ],
}


def main() -> None:
    for name, cells in CELLS.items():
        notebook = new_notebook(cells=cells)
        notebook.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(notebook, NOTEBOOKS / f"{name}.ipynb")


if __name__ == "__main__":
    main()
