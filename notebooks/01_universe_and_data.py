# %% [markdown]
# # 1. The universe and the data
#
# Who is in each group of the study, which firms the article names that no price can reach,
# what the data covers, and where its prices are adjusted rather than as traded.

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
# ## Firms and listings the study reads

# %%
notebook.show(tables.universe_table(study.universe, study.symbols))

# %% [markdown]
# Named, but private: nothing to price.

# %%
notebook.show(tables.private_table(study.universe))

# %% [markdown]
# ## What the data holds
#
# `close_basis` matters: where only dividend-adjusted closes exist, market values are rebuilt
# from raw-close anchors (see notebook 3). Series that do not span the whole study say so.

# %%
notebook.show(study.coverage_table())

# %% [markdown]
# ## Price paths around the event

# %%
from marketlib import plots

spec = study.charts["price_paths"]
rebased = study.rebased(
    [spec["group"], *spec.get("benchmarks", [])],
    spec.get("start"),
    spec.get("end"),
    exclude=spec.get("exclude", []),
)

# %%
fig = plots.price_paths(
    rebased,
    study.base_date,
    notebook.event(study),
    spec.get("title", study.title),
    f"{notebook.source_note(study)} Price basis: dividend-adjusted closes; index levels.",
)
notebook.show_figure(fig, "01_price_paths", params.figures_dir)
