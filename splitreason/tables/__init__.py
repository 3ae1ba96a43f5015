"""A run as polars tables: `splitreason.load_run(OUT)` (tables/run.py documents every column)."""

from splitreason.tables.run import Run, RunTablesError, load_run

__all__ = ["Run", "RunTablesError", "load_run"]
