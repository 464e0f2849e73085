"""A SQLite store's files, readable by their owner only.

The store holds every account's auth token in plain text and every message's body. SQLite
makes a new database file with mode 0644 less the umask, so with the usual umask (022) every
user of the host could read it, its -wal and -shm files, and a backup of it. A store Pigeon
makes is therefore made 0600 before SQLite opens it; SQLite gives the -wal and -shm files it
makes later the database file's own permissions, so they are 0600 too. A backup is written
into a file made 0600 the same way (`pigeon.store.backup`).

An existing store keeps the permissions it has: an operator may have opened it to a group on
purpose (a backup agent, a monitoring user), and a server that changed them at start would
undo that without being asked. `pigeon serve` and `pigeon worker` say so in the log when
other users can read it (`exposure_warnings`).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

#: Read and write for the owner, nothing for anyone else.
OWNER_ONLY = 0o600


def make_private(path: str | Path) -> bool:
    """Make an empty file at `path`, mode 0600 whatever the umask, unless something is there
    already (then nothing is done). Whether it made one. A file that cannot be made (its
    directory gone, not ours to write) is left for SQLite to report as it opens it: its error
    is the one the store's callers know (`StoreUnavailable`)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
    except OSError:
        return False
    try:
        os.fchmod(fd, OWNER_ONLY)  # the mode given to open() is masked by the umask
    finally:
        os.close(fd)
    return True


def store_file(url_database: str | None) -> str | None:
    """The file behind a SQLite URL's database part, or None for an in-memory database or a
    URI filename (``file:...``), whose options SQLite reads itself."""
    if not url_database or url_database == ":memory:" or url_database.startswith("file:"):
        return None
    return url_database


def exposure_warnings(path: str) -> list[str]:
    """A warning, in words for the operator, when other users of this host may read the store
    at `path` or its -wal or -shm file; nothing otherwise."""
    readable = []
    for name in (path, f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(os.stat(name).st_mode)
            if mode & 0o077:
                readable.append(f"{name} ({mode:04o})")
    if not readable:
        return []
    return [
        "the store can be opened by other users of this host: "
        + ", ".join(readable)
        + ". It holds every auth token and message body; unless that is meant, `chmod 600` its files"
    ]
