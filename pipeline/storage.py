"""Where a dataset lives: a local folder or an S3 prefix, behind one small interface.

This is the one module that touches storage: every writer (shards, plan, card, how2
export) and every reader (summary, ``inspect``, the trainer's loader, the browser) goes
through it. URIs are parsed in one place (:func:`parse_uri`) and each process holds one
boto3 client per endpoint and region (:func:`s3_client`).

Every write makes an object visible only when it is complete: locally a file written
elsewhere is moved into place with ``os.replace``; on S3 an object appears only when its
(multipart) upload completes, and a failed multipart upload is aborted by boto3's
transfer manager. Readers that need part of an object read ranges (``get_range``,
``open_random``), never the whole object. Credentials come from boto3's usual chain
(environment, profile, instance role) and are never printed; errors name the bucket and
key only.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

# "pipe:cmd", "http://...", "data:..." and the like are refused, never opened.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


@dataclass(frozen=True)
class Location:
    """A parsed storage URI: ``scheme`` "file" (``path`` a local path) or "s3"
    (``bucket`` and ``path`` the key or key prefix, no leading or trailing slash)."""

    scheme: str
    path: str
    bucket: str = ""


def parse_uri(uri: str | Path) -> Location:
    """The one parser of dataset and object URIs: a local path, ``file://PATH`` or
    ``s3://bucket/key``. Anything else (``http://``, ``pipe:``...) is a ValueError."""
    text = str(uri)
    if text.startswith("s3://"):
        bucket, _, key = text[len("s3://"):].partition("/")
        if not bucket:
            raise ValueError(f"{text!r}: expected s3://bucket/prefix")
        return Location("s3", key.strip("/"), bucket)
    if text.startswith("file://"):
        return Location("file", text[len("file://"):])
    if _SCHEME.match(text):
        raise ValueError(f"{text!r}: storage is local paths or s3:// only (file:// also accepted)")
    return Location("file", text)


# One boto3 client per process, endpoint and region. Clients are thread-safe once made,
# but making one is not, hence the lock; the pid in the key gives a forked DataLoader
# worker its own client (and connections) rather than its parent's.
_clients: dict[tuple[str, str, int], object] = {}
_clients_lock = threading.Lock()


def _reset_lock_in_child() -> None:
    global _clients_lock
    _clients_lock = threading.Lock()  # a lock held by another thread at fork time stays held


os.register_at_fork(after_in_child=_reset_lock_in_child)


def s3_client(endpoint_url: str = "", region: str = ""):
    """This process's boto3 S3 client for ``endpoint_url`` (empty: boto3's default,
    which honours ``AWS_ENDPOINT_URL``) and ``region``."""
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL", "")
    key = (endpoint, region or os.environ.get("AWS_DEFAULT_REGION", ""), os.getpid())
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = boto3.session.Session().client("s3", endpoint_url=endpoint or None, region_name=region or None)
                _clients[key] = client
    return client


class Storage(Protocol):
    uri: str

    def url(self, name: str) -> str: ...
    def exists(self, name: str) -> bool: ...
    def size(self, name: str) -> int: ...
    def put_file(self, local: Path, name: str) -> None: ...
    def put_bytes(self, data: bytes, name: str) -> None: ...
    def put_if_absent(self, name: str, data: bytes) -> bool: ...
    def get_bytes(self, name: str) -> bytes: ...
    def get_range(self, name: str, start: int, length: int) -> bytes: ...
    def open_read(self, name: str) -> BinaryIO: ...
    def open_random(self, name: str) -> BinaryIO: ...
    def delete(self, name: str) -> None: ...
    def list(self, prefix: str = "") -> list[str]: ...


_PART = ".part"


def temporary_name(name: str) -> str:
    """The file a local write of ``name`` goes through before it is renamed into place."""
    return f".{name}{_PART}"


def is_temporary_of(name: str, target: str) -> bool:
    """Whether ``name`` is a temporary file of a local write of ``target`` (the fixed
    :func:`temporary_name`, or ``put_if_absent``'s uniquely named one), left behind by a
    process killed while it wrote."""
    return name.startswith(f".{target}.") and name.endswith(_PART)


class LocalStorage:
    """A local folder. ``create``: make the folder now (writers); readers pass False."""

    def __init__(self, root: str | Path, create: bool = True):
        self.root = Path(root)
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        self.uri = str(self.root)

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if self.root.resolve() not in path.parents and path != self.root.resolve():
            raise ValueError(f"{name!r} is outside the dataset root")
        return path

    def url(self, name: str) -> str:
        return str(self.root / name)

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def size(self, name: str) -> int:
        return self._path(name).stat().st_size

    def put_file(self, local: Path, name: str) -> None:
        dest = self._path(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(local, dest)  # atomic within one filesystem
        except OSError as e:
            if e.errno != 18:  # EXDEV: another filesystem, copy then rename
                raise
            tmp = dest.with_name(temporary_name(dest.name))
            shutil.copyfile(local, tmp)
            os.replace(tmp, dest)
            Path(local).unlink(missing_ok=True)

    def put_bytes(self, data: bytes, name: str) -> None:
        dest = self._path(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(temporary_name(dest.name))
        tmp.write_bytes(data)
        os.replace(tmp, dest)

    def put_if_absent(self, name: str, data: bytes) -> bool:
        """Create ``name`` holding ``data`` unless it exists; False if it did. Atomic:
        the complete file is hard-linked into place, which fails if the name is taken."""
        dest = self._path(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=_PART, dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.link(tmp, dest)
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def get_bytes(self, name: str) -> bytes:
        return self._path(name).read_bytes()

    def get_range(self, name: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes from offset ``start`` (fewer at the end of the file)."""
        with open(self._path(name), "rb") as f:
            f.seek(start)
            return f.read(max(0, length))

    def open_read(self, name: str) -> BinaryIO:
        return open(self._path(name), "rb")

    def open_random(self, name: str) -> BinaryIO:
        return open(self._path(name), "rb")

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> list[str]:
        """Names of the files directly in the folder (not in subfolders) starting with ``prefix``."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_file() and p.name.startswith(prefix))



class RangedReader(io.RawIOBase):
    """A read-only, seekable file over an S3 object: every read is a ranged GET.
    Wrap it in ``io.BufferedReader`` for read-ahead (``S3Storage.open_random`` does).
    ``bytes_fetched`` and ``requests`` count what crossed the network."""

    def __init__(self, storage: S3Storage, name: str):
        super().__init__()
        self.storage, self.name = storage, name
        self.length = storage.size(name)
        self.pos = 0
        self.bytes_fetched = 0
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.length}[whence]
        if base + offset < 0:
            raise ValueError(f"{self.storage.url(self.name)}: seek before the start")
        self.pos = base + offset
        return self.pos

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.length - self.pos)
        if n <= 0:
            return 0
        data = self.storage.get_range(self.name, self.pos, n)
        self.requests += 1
        self.bytes_fetched += len(data)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


class S3Storage:
    """``s3://bucket/prefix`` through boto3; large files go up as multipart uploads."""

    def __init__(self, uri: str, endpoint_url: str = "", region: str = "", multipart_mb: int = 64,
                 read_ahead_kb: int = 64):
        loc = parse_uri(uri)
        if loc.scheme != "s3":
            raise ValueError(f"{uri!r}: expected s3://bucket/prefix")
        self.bucket, self.prefix = loc.bucket, loc.path
        self.uri = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self.client = s3_client(endpoint_url, region)
        mb = 1024 * 1024
        self.transfer = TransferConfig(multipart_threshold=multipart_mb * mb, multipart_chunksize=max(5, multipart_mb) * mb)
        self.read_ahead = read_ahead_kb * 1024

    def key(self, name: str) -> str:
        if ".." in name.split("/"):
            raise ValueError(f"{name!r} is outside the dataset prefix")
        return f"{self.prefix}/{name}" if self.prefix else name

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(name)}"

    def exists(self, name: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(name))
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def size(self, name: str) -> int:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key(name))["ContentLength"]
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(self.url(name)) from None
            raise

    def put_file(self, local: Path, name: str) -> None:
        self.client.upload_file(str(local), self.bucket, self.key(name), Config=self.transfer)
        Path(local).unlink(missing_ok=True)

    def put_bytes(self, data: bytes, name: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key(name), Body=data)

    def put_if_absent(self, name: str, data: bytes) -> bool:
        """A conditional PUT (``If-None-Match: *``): False if the object exists."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key(name), Body=data, IfNoneMatch="*")
            return True
        except ClientError as e:
            # 412: it exists; 409: a concurrent conditional write to the same key won
            if e.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise

    def get_bytes(self, name: str) -> bytes:
        """The whole object; FileNotFoundError when there is none (as locally)."""
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(name))["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(f"{self.url(name)}: no such object") from None
            raise

    def get_range(self, name: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes from offset ``start``: one ranged GET."""
        if length <= 0:
            return b""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(name), Range=f"bytes={start}-{start + length - 1}")["Body"]
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "InvalidRange":  # start at or past the end
                return b""
            raise
        with body:
            return body.read()

    def open_read(self, name: str) -> BinaryIO:
        """The object's streaming body, for one sequential read."""
        return self.client.get_object(Bucket=self.bucket, Key=self.key(name))["Body"]

    def open_random(self, name: str) -> io.BufferedReader:
        """A seekable file over the object, read by ranged GETs with a read-ahead buffer
        (``raw`` is the :class:`RangedReader`, which counts the bytes fetched)."""
        return io.BufferedReader(RangedReader(self, name), buffer_size=self.read_ahead)

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(name))

    def list(self, prefix: str = "") -> list[str]:
        """Names directly under the prefix (not under a further ``/``) starting with ``prefix``."""
        names, token = [], None
        base = self.key("")
        while True:
            kw = {"Bucket": self.bucket, "Prefix": base + prefix}
            if token:
                kw["ContinuationToken"] = token
            page = self.client.list_objects_v2(**kw)
            names += [o["Key"][len(base):] for o in page.get("Contents", []) if "/" not in o["Key"][len(base):]]
            if not page.get("IsTruncated"):
                return sorted(names)
            token = page["NextContinuationToken"]


def open_storage(uri: str | Path, endpoint_url: str = "", region: str = "", create: bool = True) -> Storage:
    """The storage of a dataset URI. ``create=False`` for readers: a local folder is
    not made (a missing one lists as empty)."""
    loc = parse_uri(uri)
    if loc.scheme == "s3":
        return S3Storage(str(uri), endpoint_url, region)
    return LocalStorage(loc.path, create=create)


def as_storage(where, endpoint_url: str = "", region: str = "") -> Storage:
    """A Storage as is; a path or URI opened for reading."""
    if isinstance(where, str | Path):
        return open_storage(where, endpoint_url, region, create=False)
    return where


def locate(url: str | Path, endpoint_url: str = "", region: str = "") -> tuple[Storage, str]:
    """The storage holding one object and the object's name in it, e.g.
    ``s3://b/ds/shard-000000.tar`` -> (the storage of ``s3://b/ds``, ``shard-000000.tar``)."""
    loc = parse_uri(url)
    if loc.scheme == "s3":
        folder, _, name = loc.path.rpartition("/")
        if not name:
            raise ValueError(f"{str(url)!r}: names a prefix, not an object")
        return S3Storage(f"s3://{loc.bucket}/{folder}", endpoint_url, region), name
    path = Path(loc.path)
    return LocalStorage(path.parent, create=False), path.name


def open_url(url: str | Path, endpoint_url: str = "", region: str = "") -> BinaryIO:
    """A binary stream of one object named by its full URI (a local path, ``file://``
    or ``s3://``), for sequential reading."""
    storage, name = locate(url, endpoint_url, region)
    return storage.open_read(name)
