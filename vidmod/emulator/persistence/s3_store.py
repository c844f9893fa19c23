"""S3 on disk: object bodies as files written once, each key's versions and tags in a file of its own.

moto keeps a body in a SpooledTemporaryFile (memory up to 5 MB, then an anonymous temp file), a 2 GB
multipart upload whole in memory while it completes, and answers GetObject with the whole object in memory.
Here every body is a file under ``blobs/`` from its first byte (``BlobBuffer``), a completed multipart upload
is assembled part by part on disk (``complete_streaming``), GetObject sends the file in chunks
(``StreamedBody``), and ``commit`` fsyncs the new bodies and replaces the metadata file of each key that
changed (``keys/<bucket>/<sha256 of the key>``: its versions, delete markers and tags); a body is never
rewritten, a changed tag rewrites a few hundred bytes. Bucket settings live in ``buckets/<name>``. A body no
key refers to any more is deleted; one left by a kill before its key was committed is deleted on start.

This module reaches into moto's S3 internals (pinned to 5.2.5 by ``moto_patches``):
``tests/emulator/test_moto_patches.py`` fails loudly if an upgrade moves them.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import copy
import hashlib
import importlib.util
import io
import logging
import os
import pickle
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

from moto.s3 import models as s3_models
from moto.s3 import utils as s3_utils
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
from moto.s3.models import FakeDeleteMarker, FakeKey, FakeMultipart, s3_backends
from moto.s3.responses import S3Response
from moto.s3.utils import _VersionedKeyStore

from vidmod.emulator.journal import atomic_write, fsync_directory

log = logging.getLogger(__name__)
COPY_CHUNK = 8 * 1024 * 1024
_BLOBS: dict[str, Path | None] = {"directory": None}  # set while a store is active


class AssembledBody:
    """A body already on disk (a completed multipart upload): moved, never read, into its key's file."""

    def __init__(self, path: Path, size: int):
        self.path, self.size = path, size

    def __len__(self) -> int:
        return self.size


class BlobBuffer:
    """A FakeKey's body as a file of the state directory; opened per call, so thousands of keys hold no descriptor.

    Implements the file methods moto uses on its buffer (seek/tell/read/write/truncate/close). A body that
    was never committed (a multipart part, a replaced or deleted object) is deleted when moto disposes of it.
    """

    def __init__(self, directory: Path, name: str | None = None, committed: bool = False):
        self.directory = directory
        self.name = name or uuid.uuid4().hex
        self.path = directory / self.name
        self.committed = committed  # a committed body (or a borrowed view of one) is never deleted by close()
        self.closed = False
        self._position = 0

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        size = self.path.stat().st_size if whence == os.SEEK_END and self.path.exists() else 0
        self._position = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: size}[whence] + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, size: int = -1) -> bytes:
        if not self.path.exists():
            return b""
        with self.path.open("rb") as body:
            body.seek(self._position)
            data = body.read(size)
        self._position += len(data)
        return data

    def write(self, data) -> int:
        if isinstance(data, AssembledBody) and self._position == 0:
            os.replace(data.path, self.path)
            self._position = data.size
            return data.size
        with self.path.open("r+b" if self.path.exists() else "wb") as body:
            body.seek(self._position)
            body.write(data)
        self._position += len(data)
        return len(data)

    def truncate(self, size: int | None = None) -> int:
        size = self._position if size is None else size
        with self.path.open("r+b" if self.path.exists() else "wb") as body:
            body.truncate(size)
        return size

    def flush(self) -> None:
        pass

    def make_durable(self) -> None:
        if self.committed:
            return
        if not self.path.exists():
            self.path.touch()
        with self.path.open("rb") as body:
            os.fsync(body.fileno())
        self.committed = True

    def close(self) -> None:
        if not self.closed and not self.committed:
            self.path.unlink(missing_ok=True)
        self.closed = True


def _spooled_or_blob(max_size: int = 0, *args, **kwargs):
    directory = _BLOBS["directory"]
    if directory is None:
        return tempfile.SpooledTemporaryFile(max_size, *args, **kwargs)
    return BlobBuffer(directory)


class _TempfileForMoto:
    """What ``moto.s3.models`` sees as ``tempfile``: the real module, but bodies become ``BlobBuffer``s."""

    SpooledTemporaryFile = staticmethod(_spooled_or_blob)

    def __getattr__(self, name: str):
        return getattr(tempfile, name)


_original_complete = FakeMultipart.complete


class _FullObjectChecksum:
    """moto's MultipartChecksumBuilder, but a FULL_OBJECT checksum is a running CRC, not the object in memory."""

    def __init__(self, algorithm: str | None, checksum_type: str | None):
        self.composite = s3_models.MultipartChecksumBuilder(algorithm, checksum_type)
        self.algorithm, self.full = self.composite.checksum_algorithm, self.composite.checksum_type == "FULL_OBJECT"
        self.value, self.width = 0, 4
        self.hasher = hashlib.sha256(usedforsecurity=False) if self.algorithm == "SHA256" else None
        if self.algorithm == "SHA1":
            self.hasher = hashlib.sha1(usedforsecurity=False)

    def addPart(self, part: bytes) -> None:  # moto's name for it
        if not self.full:
            self.composite.addPart(part)
            return
        if self.hasher is not None:
            self.hasher.update(part)
        elif self.algorithm == "CRC64NVME" and s3_utils.HAS_CRT:  # same fallbacks as moto's compute_checksum
            from awscrt import checksums

            self.value, self.width = checksums.crc64nvme(part, self.value), 8
        elif self.algorithm == "CRC32C" and importlib.util.find_spec("crc32c"):
            import crc32c

            self.value = crc32c.crc32c(part, self.value)
        else:
            self.value = binascii.crc32(part, self.value)

    def build(self):
        if not self.full:
            return self.composite.build()
        digest = self.hasher.digest() if self.hasher is not None else self.value.to_bytes(self.width, "big")
        return self.composite.checksum_type, base64.b64encode(digest).decode(), 1


def complete_streaming(self: FakeMultipart, body):
    """``FakeMultipart.complete`` without holding the object in memory: parts are concatenated on disk."""
    directory = _BLOBS["directory"]
    if directory is None:
        return _original_complete(self, body)
    checksum_builder = _FullObjectChecksum(
        self.metadata.get("x-amz-checksum-algorithm"), self.metadata.get("x-amz-checksum-type")
    )
    decode_hex = codecs.getdecoder("hex_codec")
    md5s, last, count, size = bytearray(), None, 0, 0
    assembled = directory / f".assembling-{uuid.uuid4().hex}"
    try:
        with assembled.open("wb") as out:
            for number, etag in body:
                part = self.parts.get(number)
                if part is None or part.etag.replace('"', "") != etag.replace('"', ""):
                    raise InvalidPart()
                if last is not None and last.contentsize < s3_models.S3_UPLOAD_PART_MIN_SIZE:
                    raise EntityTooSmall()
                md5s.extend(decode_hex(part.etag.replace('"', ""))[0])
                value = part.value  # one part (5 MB to 5 GB; 8 MB from the AWS CLI and boto3) at a time
                out.write(value)
                checksum_builder.addPart(value)
                size += len(value)
                last, count = part, count + 1
    except BaseException:
        assembled.unlink(missing_ok=True)
        raise
    if count == 0:
        assembled.unlink(missing_ok=True)
        raise MalformedXML
    etag = f"{hashlib.md5(bytes(md5s)).hexdigest()}-{count}"  # noqa: S324 - S3's multipart ETag is MD5
    return AssembledBody(assembled, size), etag, checksum_builder.build()




def _deepcopy_key(self: FakeKey, memo: dict) -> FakeKey:
    """moto deep-copies every version to list them (ListObjectVersions): share the body file, do not copy it."""
    buffer = self._value_buffer
    if not isinstance(buffer, BlobBuffer):  # moto's own way: through __getstate__, reading the body
        clone = FakeKey.__new__(FakeKey)
        clone.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return clone
    clone = FakeKey.__new__(FakeKey)
    memo[id(self)] = clone
    state = {name: value for name, value in self.__dict__.items() if name not in ("_value_buffer", "lock")}
    clone.__dict__.update(copy.deepcopy(state, memo))
    clone._value_buffer = BlobBuffer(buffer.directory, buffer.name, committed=True)
    clone.lock = threading.Lock()
    return clone


STREAM_ABOVE = 1024 * 1024  # GetObject bodies larger than this are sent from their file, chunk by chunk


class StreamedBody:
    """A GetObject body read from its file as the answer is sent, instead of moto's whole-object bytes.

    moto answers with ``key.value`` (the object in memory: 2 GB for a 2 GB video, each time the detector or the
    portal fetches it). This has what moto and werkzeug use of it: ``len``, slicing (Range requests), iteration
    in 1 MB chunks, ``close``. The file is opened at once, so a body replaced meanwhile is still sent whole.
    """

    def __init__(self, path: Path, size: int):
        self._file = path.open("rb")
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: slice) -> bytes:
        start, stop, _ = index.indices(self.size)
        return os.pread(self._file.fileno(), max(stop - start, 0), start)

    def __iter__(self):
        offset = 0
        try:
            while offset < self.size:
                chunk = os.pread(self._file.fileno(), min(COPY_CHUNK, self.size - offset), offset)
                if not chunk:
                    return
                offset += len(chunk)
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        self._file.close()


_STREAMING = threading.local()
_original_value = FakeKey.value
_original_get_object = S3Response.get_object


def _value(self: FakeKey):
    buffer = self._value_buffer
    if getattr(_STREAMING, "on", False) and isinstance(buffer, BlobBuffer) and self.contentsize > STREAM_ABOVE:
        return StreamedBody(buffer.path, self.contentsize)
    return _original_value.fget(self)


def _get_object_streaming(self: S3Response):
    _STREAMING.on = True
    try:
        return _original_get_object(self)
    finally:
        _STREAMING.on = False


def install() -> None:
    """Route moto's S3 bodies through ``BlobBuffer`` (idempotent; inert until a store is opened)."""
    s3_models.tempfile = _TempfileForMoto()
    FakeMultipart.complete = complete_streaming
    FakeKey.__deepcopy__ = _deepcopy_key
    FakeKey.value = property(_value, _original_value.fset)
    S3Response.get_object = _get_object_streaming


# ---------------------------------------------------------------------------- pickling a key without its body
class _KeyPickler(pickle.Pickler):
    """Pickles FakeKeys as their attributes plus the name of their body file (``blobs``: names referenced)."""

    def __init__(self, file, blob_directory: Path):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.blob_directory = blob_directory
        self.blobs: set[str] = set()

    def reducer_override(self, obj):
        if not isinstance(obj, FakeKey):
            return NotImplemented
        buffer = obj._value_buffer
        if not isinstance(buffer, BlobBuffer):  # a body moto created before the store was opened
            blob = BlobBuffer(self.blob_directory)
            with obj.lock:
                buffer.seek(0)
                shutil.copyfileobj(buffer, blob)  # type: ignore[arg-type]
            obj._value_buffer = buffer = blob
        buffer.make_durable()
        self.blobs.add(buffer.name)
        state = {name: value for name, value in obj.__dict__.items() if name not in ("_value_buffer", "lock")}
        state["multipart"] = None  # its parts are not kept; the object's body is
        return _restore_key, (state, buffer.name)


def _restore_key(state: dict, blob_name: str) -> FakeKey:
    key = FakeKey.__new__(FakeKey)
    key.__dict__.update(state)
    key._value_buffer = BlobBuffer(_BLOBS["directory"], blob_name, committed=True)
    key.lock = threading.Lock()
    return key


def _fingerprint(versions: list, tags: dict[str, dict]) -> tuple:
    def one(version) -> tuple:
        if isinstance(version, FakeDeleteMarker):
            return ("marker", id(version), version.version_id)
        return (
            id(version), version.version_id, id(version.acl), version.lock_mode, version.lock_until,
            repr(version.lock_legal_status), tuple(version._metadata.items()), version._storage_class,
            version.website_redirect_location, version.contentsize, id(version._value_buffer),
        )  # fmt: skip

    tag_sets = tuple(sorted((arn, tuple(tag_set.items())) for arn, tag_set in tags.items()))
    return tuple(one(version) for version in versions), tag_sets


class S3Store:
    """``<state dir>/s3``: ``blobs/`` (bodies), ``keys/<bucket>/`` (one file a key), ``buckets/`` (settings)."""

    def __init__(self, directory: Path, account: str):
        self.directory = Path(directory)
        self.account = account
        self.blobs = self.directory / "blobs"
        self.keys = self.directory / "keys"
        self.buckets = self.directory / "buckets"
        self._fingerprints: dict[tuple[str, str], tuple] = {}
        self._blob_refs: dict[tuple[str, str], set[str]] = {}
        self._bucket_settings: dict[str, bytes] = {}

    @property
    def backend(self):
        return s3_backends[self.account]["aws"]

    def open(self) -> None:
        """Bodies moto creates from now on are files of this store."""
        for folder in (self.blobs, self.keys, self.buckets):
            folder.mkdir(parents=True, exist_ok=True)
        install()
        _BLOBS["directory"] = self.blobs

    def close(self) -> None:
        _BLOBS["directory"] = None

    def _key_path(self, bucket: str, name: str) -> Path:
        return self.keys / bucket / hashlib.sha256(name.encode()).hexdigest()

    # ------------------------------------------------------------------ load
    def load(self) -> int:
        """Put the saved buckets and objects back into moto's (freshly reset) backend; returns objects loaded."""
        backend, loaded = self.backend, 0
        for path in sorted(self.buckets.iterdir()):
            if path.name.startswith("."):
                continue
            bucket = pickle.loads(path.read_bytes())  # noqa: S301 - the stack's own state
            bucket.keys, bucket.multiparts = _VersionedKeyStore(), s3_models.MultipartDict()
            backend.buckets[bucket.name] = bucket
            s3_backends.bucket_accounts[bucket.name] = (bucket.partition, self.account)
            self._bucket_settings[bucket.name] = path.read_bytes()
        referenced: set[str] = set()
        for folder in sorted(self.keys.iterdir()):
            bucket = backend.buckets.get(folder.name)
            for path in sorted(folder.iterdir()):
                if path.name.startswith(".") or bucket is None:
                    continue
                outer = pickle.loads(path.read_bytes())  # noqa: S301 - the stack's own state
                saved = pickle.loads(outer["record"]) | {"blobs": outer["blobs"]}  # noqa: S301
                bucket.keys.setlist(saved["name"], saved["versions"])
                for arn, tags in saved["tags"].items():
                    backend.tagger.tag_resource(arn, [{"Key": k, "Value": v} for k, v in tags.items()])
                self._fingerprints[(bucket.name, saved["name"])] = _fingerprint(saved["versions"], saved["tags"])
                self._blob_refs[(bucket.name, saved["name"])] = set(saved["blobs"])
                referenced |= set(saved["blobs"])
                loaded += 1
        for blob in self.blobs.iterdir():  # bodies of uploads a kill interrupted before their key was committed
            if blob.name not in referenced:
                blob.unlink()
        return loaded

    # ------------------------------------------------------------------ commit
    def commit(self, bucket_names: set[str] | None = None, key: str | None = None) -> int:
        """Write what changed in ``bucket_names`` (all buckets when None) — only ``key`` in them when the request
        named one that exists (or existed) — and return how many files were written."""
        backend, written = self.backend, 0
        names = set(backend.buckets) if bucket_names is None else bucket_names & set(backend.buckets)
        for bucket_name in sorted(names):
            bucket = backend.buckets[bucket_name]
            written += self._commit_settings(bucket)
            if key is not None and (key in bucket.keys or (bucket_name, key) in self._fingerprints):
                written += self._commit_key(bucket_name, key, bucket.keys.getlist(key, []))
                continue
            seen = set()
            for name, versions in list(bucket.keys.iterlists()):
                seen.add(name)
                written += self._commit_key(bucket_name, name, versions)
            for gone in [k for k in self._fingerprints if k[0] == bucket_name and k[1] not in seen]:
                written += self._commit_key(*gone, [])
        if bucket_names is None:
            for gone in set(self._bucket_settings) - set(backend.buckets):  # deleted buckets
                (self.buckets / gone).unlink(missing_ok=True)
                shutil.rmtree(self.keys / gone, ignore_errors=True)
                del self._bucket_settings[gone]
        return written

    def _commit_key(self, bucket_name: str, name: str, versions: list) -> int:
        """Write one key's file if it changed (remove it when the key has no version left); 1 if written."""
        if not versions:
            if (bucket_name, name) not in self._fingerprints:
                return 0
            self._key_path(bucket_name, name).unlink(missing_ok=True)
            self._release_blobs((bucket_name, name), set())
            del self._fingerprints[(bucket_name, name)]
            return 1
        tagger = self.backend.tagger
        tags = {
            version.arn: tagger.get_tag_dict_for_resource(version.arn)
            for version in versions
            if isinstance(version, FakeKey) and tagger.has_tags(version.arn)
        }
        fingerprint = _fingerprint(versions, tags)
        if self._fingerprints.get((bucket_name, name)) == fingerprint:
            return 0
        self._write_key(bucket_name, name, list(versions), tags)
        self._fingerprints[(bucket_name, name)] = fingerprint
        return 1

    def _commit_settings(self, bucket) -> int:
        clone = copy.copy(bucket)
        clone.keys, clone.multiparts = _VersionedKeyStore(), s3_models.MultipartDict()
        settings = pickle.dumps(clone, protocol=pickle.HIGHEST_PROTOCOL)
        if self._bucket_settings.get(bucket.name) == settings:
            return 0
        atomic_write(self.buckets / bucket.name, settings)
        self._bucket_settings[bucket.name] = settings
        return 1

    def _write_key(self, bucket: str, name: str, versions: list, tags: dict) -> None:
        record = io.BytesIO()
        pickler = _KeyPickler(record, self.blobs)
        pickler.dump({"name": name, "versions": versions, "tags": tags})
        path = self._key_path(bucket, name)
        if not path.parent.exists():
            path.parent.mkdir(parents=True)
            fsync_directory(path.parent.parent)
        fsync_directory(self.blobs)  # the new bodies' directory entries, before the metadata that names them
        saved = {"blobs": sorted(pickler.blobs), "record": record.getvalue()}
        atomic_write(path, pickle.dumps(saved, protocol=pickle.HIGHEST_PROTOCOL))
        self._release_blobs((bucket, name), pickler.blobs)

    def _release_blobs(self, key: tuple[str, str], still_used: set[str]) -> None:
        for blob in self._blob_refs.get(key, set()) - still_used:
            (self.blobs / blob).unlink(missing_ok=True)
        self._blob_refs[key] = set(still_used)
