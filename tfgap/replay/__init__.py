"""tfgap.replay."""
