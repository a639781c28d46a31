"""The one error the analysis raises for bad input: the CLI prints it as a single line."""

from __future__ import annotations


class AnalysisError(Exception):
    """Input the analysis cannot use (no results, an incompatible schema, a bad argument)."""
