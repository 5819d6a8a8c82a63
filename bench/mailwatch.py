"""Watches the `eml` e-mail backend's directory: every e-mail written, when, and how often.

The backend writes `<key>.eml` by naming a finished file (an unnamed file linked to its name, or a
temporary file renamed to it), and leaves an existing file alone, so counting files cannot see a
reminder e-mailed twice at the same moment. Linux's inotify can: each write is one IN_CREATE (the
link) or IN_MOVED_TO (the rename) event for its final name, so a name that gets two is a
duplicate (temporary names start with a dot and are not counted). Without inotify (another OS)
the watcher lists the directory instead and says that it cannot see duplicates.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import threading
import time
from pathlib import Path

IN_CREATE, IN_MOVED_TO, IN_Q_OVERFLOW = 0x100, 0x80, 0x4000
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000
_EVENT = struct.Struct("iIII")


class MailWatch:
    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.first_seen: dict[str, float] = {}  # key -> time.time() of its first write
        self.writes: dict[str, int] = {}
        self.overflowed = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._fd = self._inotify()
        self.sees_duplicates = self._fd is not None
        self._thread = threading.Thread(target=self._loop, name="mailwatch", daemon=True)

    def _inotify(self) -> int | None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd < 0:
                return None
            if libc.inotify_add_watch(fd, os.fsencode(self.directory), IN_CREATE | IN_MOVED_TO) < 0:
                os.close(fd)
                return None
            return fd
        except (OSError, AttributeError):
            return None

    def start(self) -> MailWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._scan()  # anything the events missed (an overflow) is at least counted once

    def distinct(self) -> int:
        with self._lock:
            return len(self.first_seen)

    def _record(self, name: str, when: float) -> None:
        if not name.endswith(".eml") or name.startswith("."):
            return
        key = name[: -len(".eml")]
        with self._lock:
            self.first_seen.setdefault(key, when)
            self.writes[key] = self.writes.get(key, 0) + 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._fd is None:
                self._scan()
                self._stop.wait(0.1)
                continue
            ready, _, _ = select.select([self._fd], [], [], 0.2)
            if not ready:
                continue
            try:
                buffer = os.read(self._fd, 1 << 20)
            except BlockingIOError:
                continue
            now = time.time()
            offset = 0
            while offset + _EVENT.size <= len(buffer):
                _wd, mask, _cookie, length = _EVENT.unpack_from(buffer, offset)
                start = offset + _EVENT.size
                name = buffer[start : start + length].rstrip(b"\0").decode(errors="replace")
                offset = start + length
                if mask & IN_Q_OVERFLOW:
                    self.overflowed = True
                elif mask & (IN_CREATE | IN_MOVED_TO):
                    self._record(name, now)

    def _scan(self) -> None:
        """Directory listing: new names only (used without inotify, and once at the end)."""
        now = time.time()
        with os.scandir(self.directory) as entries:
            names = [e.name for e in entries]
        for name in names:
            key = name[: -len(".eml")]
            if name.endswith(".eml") and not name.startswith(".") and key not in self.first_seen:
                self._record(name, now)


class SmtpWatch:
    """The same record as MailWatch for the `smtp` backend: an SMTP server (aiosmtpd) on a free
    loopback port that accepts every message and notes its Message-ID's key
    (`<r-...-...@dueflow>` -> `r-...-...`) when the message arrives; a key that arrives twice
    is a duplicate."""

    sees_duplicates, overflowed = True, False

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from bench.stack import free_port

        self.first_seen: dict[str, float] = {}
        self.writes: dict[str, int] = {}
        self._lock = threading.Lock()
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's naming)
        for line in envelope.original_content.splitlines():
            if line.lower().startswith(b"message-id:"):
                key = line.split(b":", 1)[1].strip().decode().strip("<>").split("@", 1)[0]
                self._record(key, time.time())
                break
        return "250 accepted"

    def _record(self, key: str, when: float) -> None:
        with self._lock:
            self.first_seen.setdefault(key, when)
            self.writes[key] = self.writes.get(key, 0) + 1

    def distinct(self) -> int:
        with self._lock:
            return len(self.first_seen)

    def start(self) -> SmtpWatch:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
