"""Set-up shared by the launch tests: every test starts and ends with an empty gin config (the
drivers parse their own files and bindings; one test's bindings must not reach the next)."""

import gin
import pytest


@pytest.fixture(autouse=True)
def _clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()
