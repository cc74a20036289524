"""tfgap.envs."""
