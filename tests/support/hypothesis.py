"""Example counts that follow the Hypothesis profile (tests/conftest.py): a property test that asks
for many examples gets them all under `thorough` (`make test`) and a tenth under `fast`
(`make check`), since a test's own `max_examples` would otherwise override the profile."""

from __future__ import annotations

import os


def examples(thorough: int) -> int:
    """`thorough` examples under the thorough profile, a tenth (at least 10) otherwise."""
    if os.environ.get("DUEFLOW_HYPOTHESIS_PROFILE", "fast") == "thorough":
        return thorough
    return max(10, thorough // 10)
