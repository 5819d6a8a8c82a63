"""Fixtures of the integration tests in this directory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.sink import Sink


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A real HTTP event sink on 127.0.0.1 (see tests/support/sink.py), closed afterwards."""
    s = Sink()
    yield s
    s.close()
