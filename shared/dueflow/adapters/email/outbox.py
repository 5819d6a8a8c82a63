"""The `outbox` backend: each e-mail becomes `<dir>/<key>.eml` (local runs, tests, debugging).

A reader never sees a half-written file: the message goes to a temporary file in the same
directory, is fsynced, then renamed over the final name (`os.replace` is atomic on one
filesystem). A redelivered reminder finds its file and leaves it as it is, so sending is idempotent.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from dueflow.adapters.email import Email, PermanentEmailError, TransientEmailError, to_mime

# The key becomes a file name: no separators, no leading dot (hidden/temp files start with one).
_SAFE_KEY = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*")


class OutboxBackend:
    name = "outbox"

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)

    def send(self, email: Email) -> None:
        if not _SAFE_KEY.fullmatch(email.key):
            raise PermanentEmailError(f"e-mail key is not filesystem-safe: {email.key!r}")
        target = self.directory / f"{email.key}.eml"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if target.exists():
                return  # already written by an earlier delivery of this reminder
            self._write_atomically(target, bytes(to_mime(email)))
        except OSError as exc:  # disk full, permissions, not a directory: may be fixed later
            raise TransientEmailError(f"cannot write {target}: {exc}") from exc

    def _write_atomically(self, target: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        # Make the rename itself durable (POSIX); not possible everywhere, and not essential.
        try:
            dir_fd = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)
