# %% [markdown]
# # 3. The claims
#
# Every number, count, duration and date reference of the article, and for each checkable one
# the verdict matrix: the change in market value of each group (all its firms, or those of one
# domicile) over each window and measure, with a band from the alternative inputs the data
# holds, against the tolerance the study file states with its reasoning.

# %% tags=["parameters"]
# Parameters (papermill overrides these): a study file or bundled study id, and the source
study = "deepseek"
source = "snapshot"
figures_dir = "figures"

# %%
from marketlib import notebook, tables

params = notebook.check_parameters(globals())
study = params.study
print(f"{study.title}: event {study.event_date:%d %b %Y}, base {study.base_date:%d %b %Y}")
print(f"Dates: {study.calendar_note}" if study.calendar_note else "")

# %% [markdown]
# ## Every claim of the article

# %%
notebook.show(tables.claims_table(study.claims))

# %% [markdown]
# ## The verdict matrix
#
# Window kinds: `fixed` compares two dates; `same_day_trough` the group's total at its worst
# close, every firm read on that one day; `to_trough` and `peak_to_trough` add up each firm's
# own low (and own earlier high), reached on different days. A window that spans other dated
# news (earnings, policy) lists it, and a variant stopping before the first such event is
# computed. A cell **supports** the claim only when its whole band gives a loss within the
# tolerance; a band across an edge is **inconclusive**.

# %% [markdown]
# Other dated news the study records, each with its source and the first close it could move
# (news after a window's last close is listed but touches no cell; each cell of the matrix
# names the news inside its window):

# %%
notebook.show(tables.confounders_table(study.confounders))

# %% [markdown]
# At a glance (the full matrix, with each cell's largest losers and any missing firm, follows):

# %% tags=["verdict-table"]
matrix = study.verdict()
notebook.show(tables.verdict_table(matrix))

# %%
notebook.show(tables.matrix_table(matrix))

# %%
from marketlib import plots

for measure in dict.fromkeys(matrix["measure"]):
    fig = plots.verdict_heatmap(matrix, measure, study.claimed_usd(), notebook.source_note(study))
    display(notebook.show_figure(fig, f"03_verdict_heatmap_{measure}", params.figures_dir))

# %% [markdown]
# ## Top-down cross-check
#
# Where the study gives an index's published total market value, the index's return over each
# window times that value, beside the firm-level totals of the same window.

# %%
notebook.show(tables.cross_check_table(study.cross_check_changes(), matrix))

# %% [markdown]
# ## Day by day
#
# To the study's analysis horizon; dashed lines mark other dated news.

# %%
totals = study.cumulative_changes()
fig = plots.cumulative_change(
    totals,
    notebook.event(study),
    study.claimed_usd(),
    study.home_calendar,
    f"{notebook.source_note(study)} Firms on other calendars enter with their latest close on "
    f"or before each {study.home_calendar} date.",
    marks=study.confounder_marks(totals.index[0], totals.index[-1], study.home_calendar),
)
notebook.show_figure(fig, "03_cumulative_change", params.figures_dir)

# %% [markdown]
# ## Verdict

# %% tags=["summary"]
print(tables.verdict_paragraph(matrix, study))
