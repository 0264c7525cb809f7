"""The object store both processes use: any S3-compatible service (AWS S3, Ceph RGW, MinIO,
SeaweedFS), where the operator archives each ended pod's log and the API reads it back once
the pod is gone.

Through boto3, AWS's own SDK: request signing, retries, multipart uploads and the S3 dialects
of other services are its job, not ours. Configured by the shared policy's `JOBGATE_S3_*`
settings (`crds.policy`); credentials come from boto3's own chain (AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, from a Secret in deploy/, or a pod's web identity), never from a
setting of ours. Keys are given without the deployment's prefix (`JOBGATE_S3_PREFIX`), which
is added here. Blocking: the API calls it in threads.

Two errors tell a caller what to do: `MissingError` (no such object) and `UnavailableError`
(the store cannot be reached, fails, or refuses our credentials: the same call may work later).
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

import boto3
import boto3.s3.transfer
import botocore.config
import botocore.exceptions
import urllib3.exceptions

from jobgate.crds import policy

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

_CHUNK: Final = 16 << 20  # bytes per part of a multipart upload: the memory one upload takes
_READ_CHUNK: Final = 1 << 16  # bytes per chunk of a streamed read
_DELETE_BATCH: Final = 1000  # keys per DeleteObjects request, S3's most
_MISSING: Final = frozenset({"NoSuchKey", "404", "NotFound"})
# A create-only write (`If-None-Match: *`) that found the key taken, or raced another writer.
_TAKEN: Final = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})


class MissingError(Exception):
    """No object has that key."""


class UnavailableError(Exception):
    """The store could not be reached, failed, or refused the request: try again later."""


class ObjectStore:
    def __init__(self, client: S3Client, *, bucket: str, prefix: str) -> None:
        self._client = client
        self.bucket = bucket
        self._prefix = prefix
        # One part in memory at a time, in the calling thread: bounded whatever the size.
        self._transfer = boto3.s3.transfer.TransferConfig(
            multipart_threshold=_CHUNK, multipart_chunksize=_CHUNK, max_concurrency=1, use_threads=False
        )

    @classmethod
    def connect(cls, settings: policy.JobPolicy, *, connections: int = 10) -> ObjectStore | None:
        """The deployment's store; None when it has none (no JOBGATE_S3_BUCKET)."""
        if settings.s3_bucket is None:
            return None
        config = botocore.config.Config(
            connect_timeout=5,
            read_timeout=30,
            retries={"mode": "standard", "max_attempts": 3},
            # Checksums only where S3 requires them: not every S3 service takes the trailing
            # checksums newer SDKs send by default with each upload.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=connections,
            # Services other than AWS's (an endpoint is set) rarely resolve per-bucket host
            # names: name the bucket in the path there.
            s3={"addressing_style": "path" if settings.s3_endpoint else "auto"},
        )
        session = boto3.session.Session()
        client = session.client(
            "s3",
            endpoint_url=settings.s3_endpoint,
            region_name=settings.s3_region or session.region_name or "us-east-1",
            config=config,
        )
        return cls(client, bucket=settings.s3_bucket, prefix=settings.s3_prefix)

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._prefix}{key}"

    def upload(self, key: str, source: Path) -> None:
        """Store the file under `key`; it is seen whole or not at all (a multipart upload
        becomes visible only once complete)."""
        with _errors(key):
            self._client.upload_file(str(source), self.bucket, self._prefix + key, Config=self._transfer)

    def create(self, key: str, source: Path, *, metadata: Mapping[str, str]) -> bool:
        """Store the file under `key` with `metadata` unless an object has that key already;
        whether it did. One PUT with `If-None-Match: *`: of two writers only one wins, and
        the object is seen whole or not at all."""
        with _errors(key), source.open("rb") as body:
            try:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=self._prefix + key,
                    Body=body,
                    Metadata=dict(metadata),
                    IfNoneMatch="*",
                )
            except botocore.exceptions.ClientError as error:
                if _code(error) in _TAKEN:
                    return False
                raise
        return True

    def mark(self, key: str) -> None:
        """Write an empty object under `key` (again): its time says when."""
        with _errors(key):
            self._client.put_object(Bucket=self.bucket, Key=self._prefix + key, Body=b"")

    def metadata(self, key: str) -> dict[str, str]:
        """The object's user metadata (`MissingError` if there is no object)."""
        with _errors(key):
            return self._client.head_object(Bucket=self.bucket, Key=self._prefix + key)["Metadata"]

    def modified(self, key: str) -> datetime.datetime | None:
        """When the object was last written (None: there is no object)."""
        try:
            with _errors(key):
                return self._client.head_object(Bucket=self.bucket, Key=self._prefix + key)["LastModified"]
        except MissingError:
            return None

    def chunks(self, key: str) -> Iterator[bytes]:
        """The object's bytes as they come, a chunk at a time. The object is asked for at
        the call (`MissingError` then); a connection broken later raises `UnavailableError`."""
        with _errors(key):
            body = self._client.get_object(Bucket=self.bucket, Key=self._prefix + key)["Body"]
        return _streamed(key, body.iter_chunks(_READ_CHUNK), close=body.close)

    def read(self, key: str, *, limit_bytes: int) -> bytes:
        """The object's first `limit_bytes` bytes (all of a smaller one)."""
        with _errors(key):
            try:
                answer = self._client.get_object(
                    Bucket=self.bucket, Key=self._prefix + key, Range=f"bytes=0-{limit_bytes - 1}"
                )
            except botocore.exceptions.ClientError as error:
                if _code(error) == "InvalidRange":  # AWS's answer for an empty object: no byte 0
                    return b""
                raise
            body = answer["Body"]
            try:
                return body.read()
            finally:
                body.close()

    def keys(self, prefix: str) -> Iterator[str]:
        """The keys under `prefix`, a page at a time."""
        return (key for key, _ in self.listing(prefix))

    def listing(self, prefix: str) -> Iterator[tuple[str, datetime.datetime]]:
        """The keys under `prefix` with when each object was last written, a page at a time."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._prefix + prefix
        )
        with _errors(prefix):
            for page in pages:
                for item in page.get("Contents", ()):
                    yield item["Key"].removeprefix(self._prefix), item["LastModified"]

    def delete(self, keys: list[str]) -> None:
        """Delete those objects (gone already is fine)."""
        for start in range(0, len(keys), _DELETE_BATCH):
            batch: list[ObjectIdentifierTypeDef] = [
                {"Key": self._prefix + key} for key in keys[start : start + _DELETE_BATCH]
            ]
            with _errors(keys[start]):
                answer = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if failed := answer.get("Errors"):
                raise UnavailableError(f"the object store kept {len(failed)} objects: {failed[0]}")

    def delete_under(self, prefix: str) -> None:
        """Delete every object under `prefix`."""
        self.delete(list(self.keys(prefix)))


def _streamed(key: str, chunks: Iterator[bytes], *, close: Callable[[], None]) -> Iterator[bytes]:
    try:
        with _errors(key):
            yield from chunks
    finally:
        close()


def _code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def _errors(key: str) -> Iterator[None]:
    """boto3's errors as ours, naming the key and what the store said."""
    try:
        yield
    except botocore.exceptions.ClientError as error:
        if _code(error) in _MISSING:
            raise MissingError(key) from error
        raise UnavailableError(f"the object store refused {key}: {error}") from error
    except (
        botocore.exceptions.BotoCoreError,
        boto3.exceptions.S3UploadFailedError,
        urllib3.exceptions.HTTPError,  # a streamed read broken on the way
    ) as error:
        raise UnavailableError(f"cannot reach the object store for {key}: {error}") from error
