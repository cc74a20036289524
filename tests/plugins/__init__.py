"""Code that extends tfgap from outside the package, as a user's project would."""
