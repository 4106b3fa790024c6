"""Artifact storage behind the ``mlflow-artifacts`` proxy: a port and two adapters.

Paths are relative, ``/``-separated (``12/<run_id>/artifacts/model/MLmodel``)
and checked once here (:func:`clean_path`): no absolute paths, no ``..``, no
empty parts, so nothing escapes the root. Embedded mode stores files under
``<data-dir>/artifacts``; distributed mode in MinIO / S3 through the
``minio`` client (``RUNLEDGER_ARTIFACTS_URI=s3://bucket/prefix``), whose
errors are mapped to runledger's here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from producer.errors import ContractError, NotFoundError, TransientError

from .settings import Settings

__all__ = ["ArtifactStore", "FileInfo", "InvalidPathError", "LocalArtifacts", "S3Artifacts", "artifact_store", "clean_path"]

CHUNK_BYTES = 1 << 20


class FileInfo(NamedTuple):
    path: str
    """Relative to the listed folder."""
    is_dir: bool
    size: int | None


class ArtifactStore(Protocol):
    def put(self, path: str, data: Iterator[bytes]) -> int: ...
    def open(self, path: str) -> Iterator[bytes]: ...
    def list(self, path: str) -> list[FileInfo]: ...
    def delete(self, path: str) -> None: ...


class InvalidPathError(ContractError):
    """An artifact path that is absolute, climbs out (``..``), or holds ``.``, empty parts or backslashes.
    The message says which path and why; MLflow's API answers MLflow's exact words (:data:`MLFLOW_MESSAGE`)."""

    MLFLOW_MESSAGE = "Invalid path"


def clean_path(path: str, *, allow_root: bool = False) -> str:
    p = path.strip("/")
    if not p:
        if allow_root:
            return ""
        raise ContractError("artifact path must not be empty")
    parts = p.split("/")
    if any(part in ("", ".", "..") for part in parts) or "\\" in p or "\x00" in p:
        raise InvalidPathError(f"Invalid path {path!r}: no '..', '.', empty parts or backslashes")
    return p


class LocalArtifacts:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _file(self, path: str, allow_root: bool = False) -> Path:
        p = clean_path(path, allow_root=allow_root)
        return self.root / p if p else self.root

    def put(self, path: str, data: Iterator[bytes]) -> int:
        target = self._file(path)
        if target.is_dir():
            raise ContractError(f"artifact path {path!r} is a folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in data:
                    out.write(chunk)
                    size += len(chunk)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    def open(self, path: str) -> Iterator[bytes]:
        target = self._file(path)
        if not target.is_file():
            raise NotFoundError(f"artifact {path!r} does not exist")
        f = target.open("rb")

        def chunks() -> Iterator[bytes]:
            with f:
                while chunk := f.read(CHUNK_BYTES):
                    yield chunk

        return chunks()

    def list(self, path: str) -> list[FileInfo]:
        folder = self._file(path, allow_root=True)
        if not folder.is_dir():
            return []
        return [FileInfo(c.name, c.is_dir(), None if c.is_dir() else c.stat().st_size)
                for c in sorted(folder.iterdir()) if not c.name.startswith(".upload-")]

    def delete(self, path: str) -> None:
        target = self._file(path)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        else:
            raise NotFoundError(f"artifact {path!r} does not exist")


class S3Artifacts:
    """MinIO / S3 (``minio`` client); ``prefix`` inside ``bucket``."""

    def __init__(self, bucket: str, prefix: str, endpoint: str, access_key: str, secret_key: str,
                 secure: bool) -> None:
        from minio import Minio

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = Minio(endpoint, access_key=access_key or None, secret_key=secret_key or None, secure=secure)

    def _key(self, path: str, allow_root: bool = False) -> str:
        p = clean_path(path, allow_root=allow_root)
        return "/".join(x for x in (self.prefix, p) if x)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from minio.error import S3Error

        try:
            return fn(*args, **kwargs)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject"):
                raise NotFoundError(f"artifact not found ({exc.code}): {exc.resource or ''}") from None
            raise TransientError(f"artifact store error {exc.code}: {exc.message}") from None
        except (OSError, ValueError) as exc:  # connection refused, urllib3 errors subclass OSError
            raise TransientError(f"artifact store unreachable: {exc}") from None

    def put(self, path: str, data: Iterator[bytes]) -> int:
        with tempfile.SpooledTemporaryFile(max_size=64 * CHUNK_BYTES) as buf:
            size = 0
            for chunk in data:
                buf.write(chunk)
                size += len(chunk)
            buf.seek(0)
            self._call(self.client.put_object, self.bucket, self._key(path), buf, size)
        return size

    def open(self, path: str) -> Iterator[bytes]:
        response = self._call(self.client.get_object, self.bucket, self._key(path))

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.stream(CHUNK_BYTES)
            finally:
                response.close()
                response.release_conn()

        return chunks()

    def list(self, path: str) -> list[FileInfo]:
        key = self._key(path, allow_root=True)
        prefix = key + "/" if key else ""
        objects = self._call(lambda: list(self.client.list_objects(self.bucket, prefix=prefix, recursive=False)))
        return sorted((FileInfo(o.object_name[len(prefix):].rstrip("/"), bool(o.is_dir),
                                None if o.is_dir else o.size) for o in objects), key=lambda f: f.path)

    def delete(self, path: str) -> None:
        key = self._key(path)
        names = [o.object_name for o in self._call(
            lambda: list(self.client.list_objects(self.bucket, prefix=key + "/", recursive=True)))]
        for name in names or [key]:
            self._call(self.client.remove_object, self.bucket, name)


def artifact_store(settings: Settings) -> ArtifactStore:
    uri = settings.artifact_root
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://"):].partition("/")
        if not bucket or not settings.s3_endpoint:
            raise ContractError("artifacts on S3 need s3://bucket[/prefix] and RUNLEDGER_S3_ENDPOINT")
        return S3Artifacts(bucket, prefix, settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                           settings.s3_secure)
    return LocalArtifacts(Path(uri))
