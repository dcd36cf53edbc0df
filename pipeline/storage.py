"""Where a dataset lives: a local folder or an S3 prefix, behind one small interface.

Every write makes an object visible only when it is complete: locally a file written
elsewhere is moved into place with ``os.replace``; on S3 an object appears only when its
(multipart) upload completes, and a failed multipart upload is aborted by boto3's
transfer manager. Credentials come from boto3's usual chain (environment, profile,
instance role) and are never printed; errors name the bucket and key only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    uri: str

    def exists(self, name: str) -> bool: ...
    def put_file(self, local: Path, name: str) -> None: ...
    def put_bytes(self, data: bytes, name: str) -> None: ...
    def get_bytes(self, name: str) -> bytes: ...
    def delete(self, name: str) -> None: ...
    def list(self, prefix: str = "") -> list[str]: ...


class LocalStorage:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.uri = str(self.root)

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if self.root.resolve() not in path.parents and path != self.root.resolve():
            raise ValueError(f"{name!r} is outside the dataset root")
        return path

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def put_file(self, local: Path, name: str) -> None:
        dest = self._path(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(local, dest)  # atomic within one filesystem
        except OSError as e:
            if e.errno != 18:  # EXDEV: another filesystem, copy then rename
                raise
            tmp = dest.with_name(f".{dest.name}.part")
            shutil.copyfile(local, tmp)
            os.replace(tmp, dest)

    def put_bytes(self, data: bytes, name: str) -> None:
        dest = self._path(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        tmp.write_bytes(data)
        os.replace(tmp, dest)

    def get_bytes(self, name: str) -> bytes:
        return self._path(name).read_bytes()

    def get_range(self, name: str, start: int, length: int) -> bytes:
        with open(self._path(name), "rb") as f:
            f.seek(start)
            return f.read(length)

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_file() and p.name.startswith(prefix))


class S3Storage:
    """``s3://bucket/prefix`` through boto3; large files go up as multipart uploads."""

    def __init__(self, uri: str, endpoint_url: str = "", region: str = "", multipart_mb: int = 64):
        import boto3
        from boto3.s3.transfer import TransferConfig

        rest = uri[len("s3://"):]
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise ValueError(f"{uri!r}: expected s3://bucket/prefix")
        self.prefix = prefix.strip("/")
        self.uri = uri.rstrip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region or None)
        mb = 1024 * 1024
        self.transfer = TransferConfig(multipart_threshold=multipart_mb * mb, multipart_chunksize=max(5, multipart_mb) * mb)

    def key(self, name: str) -> str:
        if ".." in name.split("/"):
            raise ValueError(f"{name!r} is outside the dataset prefix")
        return f"{self.prefix}/{name}" if self.prefix else name

    def exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(name))
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def put_file(self, local: Path, name: str) -> None:
        self.client.upload_file(str(local), self.bucket, self.key(name), Config=self.transfer)
        Path(local).unlink(missing_ok=True)

    def put_bytes(self, data: bytes, name: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key(name), Body=data)

    def get_bytes(self, name: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self.key(name))["Body"].read()

    def get_range(self, name: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        rng = f"bytes={start}-{start + length - 1}"
        return self.client.get_object(Bucket=self.bucket, Key=self.key(name), Range=rng)["Body"].read()

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(name))

    def list(self, prefix: str = "") -> list[str]:
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


def open_storage(uri: str, endpoint_url: str = "", region: str = "") -> Storage:
    if uri.startswith("s3://"):
        return S3Storage(uri, endpoint_url, region)
    if "://" in uri and not uri.startswith("file://"):
        raise ValueError(f"{uri!r}: output must be a local path, file:// or s3://")
    return LocalStorage(uri[len("file://"):] if uri.startswith("file://") else uri)


def mirror(storage: Storage, local: Path, suffixes: tuple[str, ...]) -> Path:
    """Copy the small files (stats, indexes, plan) of a remote dataset to ``local``."""
    if isinstance(storage, LocalStorage):
        return storage.root
    local.mkdir(parents=True, exist_ok=True)
    for name in storage.list():
        if name.endswith(suffixes):
            (local / name).write_bytes(storage.get_bytes(name))
    return local
