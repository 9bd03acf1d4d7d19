"""Defaults shared by the library and the command line, importable without pandas."""

SOURCES = ("auto", "snapshot", "yahoo")
DEFAULT_EVENT_DATE = "2025-01-27"  # the Monday of the R1 sell-off
