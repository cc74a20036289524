"""Imports rliable (Agarwal et al., 2021) lazily: it pulls in arch, pandas and scipy, which most
tfgap users of the analysis package (dormant neurons, Grad-CAM) never need.

requirements.txt pins pandas < 3: arch 7.x, the last series rliable 1.2.0 accepts, fails to import
under pandas 3 ("deprecate_kwarg() missing 1 required positional argument").
"""

import importlib


def modules():
  """Returns (rliable.library, rliable.metrics), imported on first use.

  Raises:
    ImportError: naming the fix when rliable or its dependencies fail to import.
  """
  try:
    return (importlib.import_module("rliable.library"),
            importlib.import_module("rliable.metrics"))
  except (ImportError, TypeError) as err:
    raise ImportError(
        f"rliable failed to import ({err}); tfgap needs rliable==1.2.0 with pandas<3 "
        "(see requirements.txt; `make install`).") from err
