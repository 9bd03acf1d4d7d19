# %% [markdown]
# # 2. The event day
#
# The change in market value of each firm from the base-date close to the event-day close, and
# the timing on each venue, each on its own sessions.

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
# ## Market value change per firm, base date to event day

# %%
group = study.charts["waterfall"]["group"]
changes = study.cap_changes(group, study.base_date, study.event_date)
notebook.show(tables.caps_table(changes))

# %%
from marketlib import plots

fig = plots.waterfall(
    tables.by_firm_name(changes, study.universe),
    f"Market value change on {study.event_date:%d %b %Y}: {group} firms",
    f"{notebook.source_note(study)} Market value = raw close x shares outstanding; price "
    f"basis: {tables.basis_summary(changes)}.",
    study.claimed_usd(),
)
notebook.show_figure(fig, "02_waterfall_one_day", params.figures_dir)

# %% [markdown]
# ## Each venue on its own sessions

# %%
panels = notebook.venue_panels(study)  # none: the study file sets no [charts.venues]
if panels:
    fig = plots.venue_timing(
        panels,
        study.base_date,
        notebook.event(study),
        f"{notebook.source_note(study)} Dividend-adjusted closes; each venue on its own calendar.",
    )
    display(notebook.show_figure(fig, "02_venue_timing", params.figures_dir))
else:
    print("The study file sets no [charts.venues] panels: there is no venue chart.")
