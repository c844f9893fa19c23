"""What the embedded stack keeps on disk, written before it acknowledges anything (``<state dir>``).

AWS never loses what it acknowledged; neither does the laptop stack, even when it is killed with SIGKILL:

| what                       | where                               | written                                       |
| -------------------------- | ----------------------------------- | --------------------------------------------- |
| S3 objects                 | ``s3/blobs`` (bodies), ``s3/keys``  | before PUT/COPY/DELETE/tagging/complete answer |
| S3 bucket settings         | ``s3/buckets``                      | before the request answers                    |
| DynamoDB items             | ``dynamodb.journal``                | before the write answers                      |
| executions, their history  | ``stepfunctions.journal``           | start/stop before they answer; events as made |
| events (EventBridge)       | ``events.jsonl`` (the event router) | before PutEvents answers; deliveries marked   |
| detector jobs, human loops | ``rekognition/``, ``a2i/``          | before the request answers                    |

``StateStore`` opens the state directory (refusing one of another format with one line), loads and compacts
the journals, puts S3 objects back before the template is deployed and items and finished executions after,
and ``commit``s what a request changed before the gateway sends the answer. Running executions are started
again under their own names (``executions_store``).
"""

from __future__ import annotations

import json
import logging
import threading
from importlib.metadata import version
from pathlib import Path

from vidmod.emulator import journal
from vidmod.emulator.persistence.dynamodb_store import DynamoDBStore, KeySchemaChanged
from vidmod.emulator.persistence.executions_store import ExecutionsStore
from vidmod.emulator.persistence.s3_store import S3Store

log = logging.getLogger(__name__)

FORMAT_FILE = "FORMAT"
FORMAT_NAME = "vidmod-state"
FORMAT_VERSION = 2  # 1: stack.pickle written whole on a clean stop (before the crash-safe store)


class StateError(RuntimeError):
    """The state directory cannot be used by this version of vidmod (one line, says what to do)."""


def check_format(state_dir: Path) -> bool:
    """Accept an empty directory (and mark it: True) or one of this format; refuse anything else in one line."""
    state_dir = Path(state_dir)
    marker = state_dir / FORMAT_FILE
    expected = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "moto": version("moto")}
    if marker.exists():
        try:
            found = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise StateError(f"{marker} is unreadable ({error}): move {state_dir} aside to start empty") from None
        if found != expected:
            raise StateError(
                f"{state_dir} holds vidmod state format {found.get('version')} (moto {found.get('moto')}); this "
                f"vidmod reads format {FORMAT_VERSION} (moto {version('moto')}): move it aside to start empty"
            )
        return False
    if (state_dir / "stack.pickle").exists():
        raise StateError(
            f"{state_dir} holds vidmod state format 1 (stack.pickle); this vidmod reads format {FORMAT_VERSION}: "
            "move it aside to start empty"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    journal.atomic_write(marker, json.dumps(expected).encode())
    return True


class StateStore:
    def __init__(self, state_dir: Path, account: str, region: str):
        self.state_dir = Path(state_dir)
        self.s3 = S3Store(self.state_dir / "s3", account)
        self.dynamodb = DynamoDBStore(self.state_dir / "dynamodb.journal", account, region)
        self.executions = ExecutionsStore(self.state_dir, account, region)
        self._lock = threading.Lock()  # one commit at a time: a request answers only after its own is on disk
        self.objects = 0
        self.new = True  # the state directory was empty
        self._open = False

    def open(self) -> None:
        """Check the format and read the journals (moto's backends are filled by ``restore_*``)."""
        self.new = check_format(self.state_dir)
        self.dynamodb.load()
        self.executions.load()

    def restore_storage(self) -> None:
        """S3 buckets and objects, into a freshly reset moto (before the template's resources are deployed)."""
        self.s3.open()
        self.objects = self.s3.load()

    def restore_after_deploy(self) -> int:
        """DynamoDB items and finished executions, once the tables and the state machine exist."""
        try:
            self.dynamodb.restore()
        except KeySchemaChanged as error:
            raise StateError(f"{error}: move {self.state_dir} aside to start empty") from None
        self._open = True
        self.commit()  # resources the deploy created
        return self.executions.restore_finished()

    def commit(
        self,
        buckets: set[str] | None = None,
        *,
        key: str | None = None,
        s3: bool = True,
        tables: bool | set[str] | None = True,
        items: dict[str, list[dict]] | None = None,
    ) -> None:
        """Write what changed: S3 objects and settings of ``buckets`` (every bucket when None; only ``key`` when
        given), DynamoDB items of ``tables`` (a set of names; True or None: every table; False: none; only the
        ``items`` named, table → key attributes, when given)."""
        if not self._open:
            return
        changed = 0
        with self._lock:
            if s3:
                self.s3.commit(buckets, key)
            if tables is not False:
                changed = self.dynamodb.commit(tables if isinstance(tables, set) else None, items, sync=False)
        if changed:  # outside the lock: concurrent writes share one fsync (group commit), each before its answer
            self.dynamodb.sync()

    def suspend(self) -> None:
        self.executions.suspend()

    def close(self) -> None:
        if self._open:
            self.commit()
        self._open = False
        self.s3.close()
        self.dynamodb.close()
        self.executions.close()
