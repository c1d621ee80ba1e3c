"""Real unwritable paths for the token store tests (see solar_pipeline_tests/unwritable.py)."""

from solar_pipeline_tests.unwritable import freezer, small_tmpfs

__all__ = ["freezer", "small_tmpfs"]
