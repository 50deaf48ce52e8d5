"""Build a folder once when several processes want it at the same time.

Every torchrun rank, and any other run pointed at the same data folder, may find a corpus
missing. Only builders (one per torchrun node, and every plain run) set out to build it;
they take an exclusive lock on `<folder>.lock` beside the folder, so one builds while the
others wait, then find the finished folder and only read it. The other ranks wait for the
folder's completion marker without touching the lock.

The lock is a POSIX record lock (fcntl.lockf), which has no timeout (preparing VCTK can take
longer than a process group's), needs no process group, is released by the kernel when its
holder dies (even by kill -9), and is not inherited by the holder's forked worker processes
(which flock's would be, keeping it held while orphaned workers linger). On NFS it is taken
through the server's lock manager, so nodes sharing a data folder share its lock, and nodes
with their own folders each build their own. A corpus's lock file is left behind; a lock
that must leave nothing (`remove`) is deleted while still held, and a process that was
waiting on the deleted file sees that and locks the path's new file instead, so two
processes never hold "the" lock at once.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pathlib
import time
from typing import Callable, Iterator

from .errors import AudioVQError

POLL_SECONDS = 0.5  # how often a process that is not a builder looks for the finished folder


def lock_path(folder: str | os.PathLike) -> pathlib.Path:
    """The lock file of `folder`: `<folder>.lock` in its parent."""
    folder = pathlib.Path(folder)
    return folder.with_name(folder.name + ".lock")


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, announce: bool = False, remove: bool = False) -> Iterator[None]:
    """Hold the exclusive lock of `folder`; when another process holds it, say so in one line
    (if `announce`) and block until that process releases it or exits. `remove`: delete the
    lock file on release (a process that was waiting on the deleted file notices, and locks
    the path afresh), for locks that must leave nothing behind."""
    path = lock_path(folder)
    announced = False
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            f = open(path, "a")
        except OSError as e:
            raise AudioVQError(f"{path}: cannot create the lock file ({e.strerror})") from None
        try:
            try:
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EACCES, errno.EAGAIN):
                    raise
                if announce and not announced:
                    print(f"waiting for another process to finish {folder} …", flush=True)
                    announced = True
                fcntl.lockf(f, fcntl.LOCK_EX)
        except OSError as e:
            f.close()
            raise AudioVQError(f"{path}: cannot lock ({e.strerror}); put the data (AUDIOVQ_DATA, "
                               "data.prepared) on a file system that supports locks") from None
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(f.fileno()).st_ino:
            break
        f.close()  # the holder we waited for removed this file: lock the path's new one
    with f:
        try:
            yield
        finally:
            if remove:
                path.unlink(missing_ok=True)  # while still held: nobody can lock this inode after us
            fcntl.lockf(f, fcntl.LOCK_UN)


def build_once(folder: str | os.PathLike, built: Callable[[], bool], build: Callable[[], None],
               announce: bool = True, builder: bool = True) -> None:
    """Make sure `folder` is finished: run `build` unless `built()`, in one process at a time.

    `built` must be true only of a complete folder (a marker or manifest its builder writes
    last), so a folder left half-written by a killed builder is built again (or resumed) by
    the next builder. A finished folder is read without taking the lock, so read-only copies
    work. A `builder` that finds the lock held prints one line (when `announce`) and waits;
    a process that is not a `builder` (a torchrun rank other than its node's first) leaves
    the work to the builder of its group and waits, silently, until the folder is finished.
    """
    if built():
        return
    if not builder:
        while not built():
            time.sleep(POLL_SECONDS)
        return
    with folder_lock(folder, announce):
        if not built():  # the process we waited for may have finished it
            build()
