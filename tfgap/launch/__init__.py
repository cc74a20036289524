"""tfgap.launch."""
