"""tfgap.agents."""
