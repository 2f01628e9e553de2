"""Aggregation, statistics, plots and regression checks over run folders (filled by the pipeline issue)."""
