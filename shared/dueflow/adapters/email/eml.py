"""The `eml` backend: each e-mail becomes `<dir>/<key>.eml` (local runs, tests, debugging).

A reader never sees a half-written file: the message goes to a temporary file in the same
directory, is fsynced, then renamed over the final name (`os.replace` is atomic on one
filesystem). A redelivered reminder finds its file and leaves it as it is, so sending is idempotent.

A batch (`send_many`) writes every temporary file first and makes them durable with one
`syncfs` of the directory's filesystem instead of an fsync each (about 1.5 ms apiece here: a
storm of 10,000 reminders would spend 15 s in fsync), then renames them and fsyncs the directory
once.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import tempfile
from pathlib import Path

from dueflow.adapters.email import (
    Email,
    EmailError,
    PermanentEmailError,
    TransientEmailError,
    mime_bytes,
)

# The key becomes a file name: no separators, no leading dot (hidden/temp files start with one).
_SAFE_KEY = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*")


class EmlBackend:
    name = "eml"
    # a redelivered e-mail finds its file and writes nothing: sending twice cannot duplicate, so
    # notify may record a whole batch's outcomes after sending it (one transaction)
    idempotent = True

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
            self._write_atomically(target, mime_bytes(email))
        except OSError as exc:  # disk full, permissions, not a directory: may be fixed later
            raise TransientEmailError(f"cannot write {target}: {exc}") from exc

    def send_many(self, emails: list[Email]) -> list[EmailError | None]:
        """Each e-mail's outcome, in order (see dueflow.service.notify.send_all): all written,
        or, when the disk fails, a TransientEmailError for each one not yet in place."""
        results: list[EmailError | None] = [None] * len(emails)
        in_place: set[int] = set()  # written now, or by an earlier delivery
        pending: list[tuple[int, str, Path]] = []  # (index, temporary file, final name)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for i, email in enumerate(emails):
                if not _SAFE_KEY.fullmatch(email.key):
                    results[i] = PermanentEmailError(
                        f"e-mail key is not filesystem-safe: {email.key!r}"
                    )
                    continue
                target = self.directory / f"{email.key}.eml"
                if target.exists():
                    in_place.add(i)  # already written by an earlier delivery of this reminder
                    continue
                fd, tmp = tempfile.mkstemp(
                    dir=self.directory, prefix=f".{target.name}.", suffix=".tmp"
                )
                pending.append((i, tmp, target))
                with os.fdopen(fd, "wb") as f:
                    f.write(mime_bytes(email))
            self._sync_data([tmp for _, tmp, _ in pending])
            for i, tmp, target in pending:
                os.replace(tmp, target)
                in_place.add(i)
            self._sync_directory()
        except OSError as exc:
            for _, tmp, _ in pending:
                Path(tmp).unlink(missing_ok=True)
            error = f"cannot write to {self.directory}: {exc}"
            for i in range(len(emails)):
                if results[i] is None and i not in in_place:
                    results[i] = TransientEmailError(error)
        return results

    def _sync_data(self, paths: list[str]) -> None:
        if not paths:
            return
        syncfs = _libc_syncfs()
        if syncfs is not None:
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                if syncfs(fd) == 0:
                    return
            finally:
                os.close(fd)
        for path in paths:  # no syncfs (not Linux), or it failed: one fsync each
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

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
        self._sync_directory()

    def _sync_directory(self) -> None:
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


@functools.cache
def _libc_syncfs():
    """Linux's syncfs(2) (flush one filesystem), or None where libc has none."""
    try:  # the symbols the process already has: libc's, without searching for the library
        return getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    except OSError:
        return None
