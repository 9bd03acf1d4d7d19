# %% [markdown]
# # 4. Recovery
#
# How long did each listing take to regain its base-date close? Prices are read to the end of
# the data; a listing that had not recovered by then is marked so, not extrapolated.

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

# %%
table = study.recovery()
notebook.show(tables.recovery_table(table, study.base_date))

# %%
from marketlib import plots

fig = plots.recovery(
    table, study.base_date, f"{notebook.source_note(study)} Dividend-adjusted closes."
)
notebook.show_figure(fig, "04_recovery", params.figures_dir)
