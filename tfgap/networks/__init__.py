"""tfgap.networks."""
