"""Files that survive ``kill -9``: fsync'd appends and atomic replaces, the two writes the state directory uses.

A journal is a file of records, each framed as ``length, crc32, payload`` and fsync'd before ``append``
returns, so a record the stack acknowledged is on disk. Records nobody is answered on (``sync=False``, e.g. an
execution's history events) are written at once — a killed process loses nothing the kernel has — and fsync'd
within ``LAZY_SYNC_SECONDS`` or by the next synced append, which bounds what a power cut could take.

A kill in the middle of an append leaves a torn last
record: ``read`` detects it (short frame or checksum mismatch), names it in a warning, cuts the file back to
the last whole record and goes on; a start never fails on it. Payloads are pickles: the journal is the stack's
own file in the user's state directory (pickle runs code when loaded: do not load one from someone else).
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import threading
import time
import zlib
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

FRAME = struct.Struct(">II")  # payload length, crc32 of the payload
LAZY_SYNC_SECONDS = 0.2


def fsync_directory(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (the directory entry is data too)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a crash leaves either the old file or the new one, never a mix."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)
    fsync_directory(path.parent)


def _frame(record: object) -> bytes:
    payload = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


class Journal:
    """An append-only file of records; ``append`` returns once the records are on disk.

    Group commit: records are written in order under a lock, and the fsync that makes them durable runs outside
    it; a writer whose bytes an fsync already covered returns without another. Concurrent requests share one
    disk flush instead of queueing for one each (and the engine's history appends never wait for the disk).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # order of the records in the file
        self._sync_lock = threading.Lock()  # one fsync at a time; the others wait for it and may be covered
        self._file = self.path.open("ab")
        self._written = self._synced = self._file.tell()  # byte offsets: end of what is written / durable
        self._unsynced = threading.Event()
        self._closed = False
        fsync_directory(self.path.parent)
        threading.Thread(target=self._sync_lazily, name=f"journal-sync-{self.path.name}", daemon=True).start()

    def append(self, *records: object, sync: bool = True) -> None:
        """``sync=False``: durable within ``LAZY_SYNC_SECONDS`` (history events), not before returning."""
        data = b"".join(_frame(record) for record in records)
        with self._lock:
            self._file.write(data)
            self._file.flush()
            self._written += len(data)
            end = self._written
        if sync:
            self.sync(end)
        else:
            self._unsynced.set()

    def sync(self, upto: int | None = None) -> None:
        """Return once the bytes up to ``upto`` (default: all written so far) are on disk."""
        upto = self._written if upto is None else upto
        with self._sync_lock:
            if self._synced >= upto:
                return  # a concurrent fsync covered them
            target = self._written
            try:
                os.fsync(self._file.fileno())
            except (OSError, ValueError):  # closed meanwhile: close() synced everything
                if not self._closed:
                    raise
            self._synced = max(self._synced, target)

    def _sync_lazily(self) -> None:
        while True:
            self._unsynced.wait()
            time.sleep(LAZY_SYNC_SECONDS)
            if self._closed:
                return
            self._unsynced.clear()
            self.sync()

    def close(self) -> None:
        with self._lock, self._sync_lock:
            if not self._closed:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                self._closed = True
        self._unsynced.set()  # wakes the sync thread, which sees the journal closed


def read(path: Path) -> list[object]:
    """Every whole record of the journal at ``path`` (none if it does not exist); a torn tail is cut off."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    records, offset = [], 0
    while offset < len(data):
        header = data[offset : offset + FRAME.size]
        if len(header) == FRAME.size:
            length, checksum = FRAME.unpack(header)
            payload = data[offset + FRAME.size : offset + FRAME.size + length]
            if len(payload) == length and zlib.crc32(payload) == checksum:
                records.append(pickle.loads(payload))  # noqa: S301 - the stack's own journal
                offset += FRAME.size + length
                continue
        log.warning(
            "%s: the record at byte %d is torn (%d bytes; the stack was killed while writing it): skipped",
            path, offset, len(data) - offset,
        )  # fmt: skip
        with path.open("r+b") as out:
            out.truncate(offset)
            os.fsync(out.fileno())
        break
    return records


def rewrite(path: Path, records: Iterable[object]) -> None:
    """Replace the journal at ``path`` with ``records`` (compaction), atomically."""
    atomic_write(path, b"".join(_frame(record) for record in records))
