"""The `eml` backend: each e-mail becomes `<dir>/<key>.eml` (local runs, tests, debugging).

A reader never sees a half-written file, and a file once written is never replaced: a redelivered
reminder finds its file and leaves it as it is, so sending is idempotent. On Linux the message is
written to an unnamed file in the directory (`O_TMPFILE`), made durable, then given its name with
`linkat`, which fails when the name exists (so two deliveries racing cannot both write either).
Elsewhere (no `O_TMPFILE`, or a filesystem without it) it goes to a named temporary file that is
renamed to the final name when none exists yet (`os.replace` is atomic on one filesystem).

A batch (`send_many`) writes every message first and makes them durable with one `syncfs` of the
directory's filesystem instead of an fsync each (about 1.5 ms apiece here: a storm of 10,000
reminders would spend 15 s in fsync), then names them and fsyncs the directory once. Creating the
files is most of what a storm costs notify (inodes and directory entries, in the kernel); the
unnamed file spares each e-mail a temporary name, its rename and an existence check
(docs/performance.md, the reminder storm).
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
# Files a batch holds open before naming them: well under any limit on open descriptors.
_CHUNK = 256
_O_TMPFILE = getattr(os, "O_TMPFILE", 0)


class EmlBackend:
    name = "eml"
    # a redelivered e-mail finds its file and writes nothing: sending twice cannot duplicate, so
    # notify may record a whole batch's outcomes after sending it (one transaction)
    idempotent = True

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)

    def send(self, email: Email) -> None:
        [error] = self.send_many([email])
        if error is not None:
            raise error

    def send_many(self, emails: list[Email]) -> list[EmailError | None]:
        """Each e-mail's outcome, in order (see dueflow.service.notify.send_all): all written,
        or, when the disk fails, a TransientEmailError for each one not yet in place."""
        results: list[EmailError | None] = [None] * len(emails)
        in_place: set[int] = set()  # written now, or by an earlier delivery
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with _Batch(self.directory, in_place) as batch:
                for i, email in enumerate(emails):
                    if not _SAFE_KEY.fullmatch(email.key):
                        results[i] = PermanentEmailError(
                            f"e-mail key is not filesystem-safe: {email.key!r}"
                        )
                        continue
                    batch.stage(i, f"{email.key}.eml", mime_bytes(email))
                    if len(batch.staged) >= _CHUNK:
                        batch.publish()
                batch.publish()
        except OSError as exc:  # disk full, permissions, not a directory: may be fixed later
            error = f"cannot write to {self.directory}: {exc}"
            for i in range(len(emails)):
                if results[i] is None and i not in in_place:
                    results[i] = TransientEmailError(error)
        return results


class _Batch:
    """Messages written into the directory but not yet named (`stage`), then made durable and
    named (`publish`, which adds each one's index to `in_place`). Leaving discards whatever was
    staged and not named: an unnamed file vanishes with its descriptor, a temporary one is
    removed."""

    def __init__(self, directory: Path, in_place: set[int]):
        self.directory = directory
        self.in_place = in_place
        self.unnamed = _unnamed_files_work(str(directory))
        # (index, final name, descriptor of the unnamed file or path of the temporary one)
        self.staged: list[tuple[int, str, int | str]] = []

    def __enter__(self) -> _Batch:
        self.dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        return self

    def __exit__(self, *exc) -> None:
        for _, _, file in self.staged:
            _discard(file)
        os.close(self.dir_fd)

    def stage(self, index: int, name: str, data: bytes) -> None:
        if self.unnamed:
            fd = os.open(self.directory, _O_TMPFILE | os.O_WRONLY, 0o600)
            self.staged.append((index, name, fd))
            _write_all(fd, data)
            return
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
        self.staged.append((index, name, tmp))
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)

    def publish(self) -> None:
        if not self.staged:
            return
        self._sync_data()
        while self.staged:
            index, name, file = self.staged[0]
            try:
                self._name(name, file)
            finally:
                _discard(file)
                del self.staged[0]
            self.in_place.add(index)
        try:  # make the names durable (POSIX); not possible everywhere, and not essential
            os.fsync(self.dir_fd)
        except OSError:
            pass

    def _name(self, name: str, file: int | str) -> None:
        try:
            if isinstance(file, int):
                os.link(f"/proc/self/fd/{file}", name, dst_dir_fd=self.dir_fd, follow_symlinks=True)
            elif not os.path.exists(os.path.join(self.directory, name)):
                os.replace(file, os.path.join(self.directory, name))
        except FileExistsError:
            pass  # written by an earlier delivery of this reminder: left as it is

    def _sync_data(self) -> None:
        if len(self.staged) > 1 and (syncfs := _libc_syncfs()) is not None:
            if syncfs(self.dir_fd) == 0:
                return
        for _, _, file in self.staged:  # one file, no syncfs (not Linux) or it failed
            fd = file if isinstance(file, int) else os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                if fd is not file:
                    os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _discard(file: int | str) -> None:
    """Close an unnamed file (it is gone then, unless it was named), remove a temporary one."""
    if isinstance(file, int):
        os.close(file)
    else:
        Path(file).unlink(missing_ok=True)


@functools.lru_cache(maxsize=8)
def _unnamed_files_work(directory: str) -> bool:
    """Whether unnamed files can be made in `directory` and named through /proc (Linux 3.11+,
    ext4, xfs, btrfs, tmpfs, ...)."""
    if not _O_TMPFILE or not os.path.isdir("/proc/self/fd"):
        return False
    try:
        os.close(os.open(directory, _O_TMPFILE | os.O_WRONLY, 0o600))
    except OSError:
        return False
    return True


@functools.cache
def _libc_syncfs():
    """Linux's syncfs(2) (flush one filesystem), or None where libc has none."""
    try:  # the symbols the process already has: libc's, without searching for the library
        return getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    except OSError:
        return None
