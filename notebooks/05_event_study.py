# %% [markdown]
# # 5. Event study: was the fall firm-specific?
#
# A price drop on the event day says little by itself: the whole market may have fallen too. An
# event study (MacKinlay 1997) separates the two. For each listing it fits the market model
# `R = alpha + beta * R_market` over an estimation window before day 0 (the study file sets it),
# then measures the *abnormal* return, the part the market does not explain, around the event,
# and tests whether it is larger than the listing's usual noise. Days count in each listing's own
# exchange sessions, each against its calendar's benchmark.

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
# ## Abnormal returns of the focus group
#
# `car_%` is the cumulative abnormal return over the window; `t_stat` divides it by its
# standard error, which includes the error of the estimated alpha and beta.

# %%
results = study.event_study()
focus = study.members(study.event_spec.focus)
shown = results.results[results.results["symbol"].isin(focus)]
notebook.show(tables.results_table(shown))

# %% [markdown]
# Listings whose day-0 abnormal return is significant at the 5% level:

# %%
notebook.show(tables.significant(shown, "[0,0]", level=0.05))

# %% [markdown]
# ## The path around day 0
#
# Each panel cumulates abnormal returns over the study's path window. The shaded band is the 95%
# interval: a path outside it moved more than the market model allows for by chance.

# %%
from marketlib import plots

fig = plots.car_paths(study.car_paths(), notebook.source_note(study))
notebook.show_figure(fig, "05_car_paths", params.figures_dir)

# %% [markdown]
# ## By group
#
# One listing per firm, so no firm counts twice. The cross-sectional test (`cs`) uses the spread
# of CARs across firms; the BMP test first divides each CAR by its own standard error, which
# keeps it valid when the event raises volatility.

# %%
tests = study.group_tests(results)
notebook.show(tables.group_table(tests))

# %%
fig = plots.group_significance(tests, notebook.source_note(study))
notebook.show_figure(fig, "05_group_significance", params.figures_dir)

# %% [markdown]
# Listings the study could not measure, and why (nothing is filled in for them):

# %%
notebook.show(tables.skipped_table(results))

# %% [markdown]
# ## Reading the results
#
# - A benchmark index contains its largest members. The market model credits their share of the
#   index's move to "the market", so their abnormal returns understate a firm-specific shock.
# - All firms share one event date, so their abnormal returns are correlated. Both group tests
#   assume independence, and their p-values are therefore optimistic (Kolari & Pynnönen 2010).
# - Abnormal returns measure percentages; the dollar question is notebook 3's.
