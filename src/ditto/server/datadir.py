"""A data folder belongs to one server: an OS file lock (`flock` on `DIR/server.lock`) held for the
server's life. A second server on a held folder fails at once, before it binds, loads or recovers
anything, and changes nothing in the folder. The lock goes with the process, however it ends."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ditto.errors import DittoError

LOCK_NAME = "server.lock"


class DataDirLock:
    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DittoError(f"--data-dir {self.data_dir}: cannot use it ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DittoError(
                f"--data-dir {self.data_dir} is in use by another ditto serve (pid {holder}); "
                "stop that server or give another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
