"""Test-session settings for the whole repository (test fixtures: tests/conftest.py)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every notebook cell that nbval collects as slow, so `-m "not slow"` is quick."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
