"""tfgap.analysis."""
