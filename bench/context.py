"""What every scenario gets: the profile, the run's infrastructure, and a progress log."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from bench.profiles import Profile
from bench.stack import Infra


@dataclass
class Context:
    profile: Profile
    infra: Infra
    started: float = field(default_factory=time.monotonic)
    quiet: bool = False

    def log(self, message: str) -> None:
        if not self.quiet:
            elapsed = time.monotonic() - self.started
            print(f"[bench {elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)
