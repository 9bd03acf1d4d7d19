# %% [markdown]
# # 3. The claims
#
# Every numeric claim of the article, and for each checkable one the verdict matrix: the
# change in market value of each group over each window and measure, against the tolerance the
# study file states with its reasoning.

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

# %% [markdown]
# ## Every numeric claim

# %%
notebook.show(tables.claims_table(study.claims))

# %% [markdown]
# ## The verdict matrix
#
# Market values are computed once, for every firm of every group over every window, and reused
# by the matrix and the day-by-day totals.

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
# ## Day by day

# %%
totals = study.cumulative_changes()
fig = plots.cumulative_change(
    totals,
    notebook.event(study),
    study.claimed_usd(),
    study.home_calendar,
    f"{notebook.source_note(study)} Firms on other calendars enter with their latest close on "
    f"or before each {study.home_calendar} date.",
)
notebook.show_figure(fig, "03_cumulative_change", params.figures_dir)

# %% [markdown]
# ## Verdict

# %% tags=["summary"]
print(tables.verdict_paragraph(matrix, study))
