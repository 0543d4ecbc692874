"""The object store backups live in: S3, or any S3-compatible store (NHN Object Storage, moto in the lab).

Every call goes through drorch's one retry policy, objects are written with the
configured server-side encryption, and every object's SHA-256 travels with it (in
the manifest or the object's metadata) and is checked on every read, so a
corrupted object is refused by name before anything is overwritten. Errors that
an operator must fix (a missing bucket, refused credentials) are exit-2 errors
naming the bucket, never a traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from drorch.config.schema import Backups, Config
from drorch.errors import InvalidInput, OperationFailed, RefusedForSafety
from drorch.providers import retry

T = TypeVar("T")
PART_SIZE = 8 << 20  # S3's minimum part is 5 MiB; 8 MiB parts keep a 1 GB dump under 200 parts
READ_CHUNK = 1 << 20
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken",
                     "InvalidToken", "AuthorizationHeaderMalformed", "InvalidClientTokenId"}


class ChecksumMismatch(RefusedForSafety):
    """An object's bytes do not hash to the SHA-256 recorded for them: it is corrupted or was replaced."""


@dataclass(frozen=True)
class Stored:
    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Listed:
    key: str
    size: int
    modified: float


def backups_of(config: Config) -> Backups:
    if config.backups is None:
        raise InvalidInput("the config has no 'backups:' section: add backups.store (provider, bucket) first")
    return config.backups


def s3_client(config: Config) -> Any:
    """A boto3 S3 client for the store: botocore's own retries off (drorch's policy retries), path-style by default,
    and checksums only where S3 requires them (S3-compatible stores reject the newer default ones)."""
    import boto3
    import botocore.session
    from botocore.config import Config as BotoConfig

    store = backups_of(config).store
    provider = store.provider
    core = botocore.session.Session(profile=provider.profile)
    if provider.credentials_file is not None:
        core.set_config_variable("credentials_file", str(config.resolve_path(provider.credentials_file)))
    session = boto3.Session(botocore_session=core, region_name=provider.region)
    settings = BotoConfig(connect_timeout=3, read_timeout=30, retries={"total_max_attempts": 1, "mode": "standard"},
                          s3={"addressing_style": store.addressing_style},
                          request_checksum_calculation="when_required", response_checksum_validation="when_required")
    make: Any = session.client
    return make("s3", region_name=provider.region, endpoint_url=provider.endpoints.get("s3", provider.endpoint_url),
                config=settings)


def gzip_chunks(chunks: Iterable[bytes], level: int) -> Iterator[bytes]:
    """Compress a stream as one gzip member (``gunzip`` reads it too), without holding it in memory."""
    packer = zlib.compressobj(level, zlib.DEFLATED, 31)
    for chunk in chunks:
        packed = packer.compress(chunk)
        if packed:
            yield packed
    yield packer.flush()


def gunzip_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    unpacker = zlib.decompressobj(31)
    try:
        for chunk in chunks:
            out = unpacker.decompress(chunk)
            if out:
                yield out
        yield unpacker.flush()
    except zlib.error as exc:
        raise ChecksumMismatch(f"a gzip stream is damaged ({exc})") from None


def read_chunks(handle: IO[bytes], size: int = READ_CHUNK) -> Iterator[bytes]:
    while chunk := handle.read(size):
        yield chunk


class Store:
    """One bucket and key prefix; keys passed in are relative to ``root`` (the prefix and the service)."""

    def __init__(self, config: Config, client: Any | None = None) -> None:
        self.settings = backups_of(config).store
        self.bucket = self.settings.bucket
        prefix = self.settings.prefix.strip("/")
        self.root = f"{prefix}/{config.service}/" if prefix else f"{config.service}/"
        self.client = client if client is not None else s3_client(config)

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.root}{key}"

    def _extra(self) -> dict[str, str]:
        sse = self.settings.server_side_encryption
        if sse == "none":
            return {}
        extra: dict[str, str] = {"ServerSideEncryption": sse}
        if sse == "aws:kms" and self.settings.kms_key_id:
            extra["SSEKMSKeyId"] = self.settings.kms_key_id
        return extra

    def call(self, what: str, fn: Callable[[], T], bucket: bool = False) -> T:
        """``fn`` under the retry policy; store errors become messages naming the bucket or object (``bucket``: a
        call on the bucket itself, whose 404 means the bucket is missing)."""
        import botocore.exceptions

        try:
            return retry.call(fn)
        except botocore.exceptions.NoCredentialsError:
            raise InvalidInput(f"no credentials for the backup store (bucket {self.bucket}): set "
                               "backups.store.provider.credentials_file or profile") from None
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket" or (bucket and code in ("404", "NotFound")):
                raise InvalidInput(f"bucket '{self.bucket}' does not exist in the backup store: create it (with "
                                   "default encryption) or fix backups.store.bucket") from None
            if code in _CREDENTIAL_CODES or code in ("403", "Forbidden"):
                raise InvalidInput(f"the backup store refused the credentials for bucket '{self.bucket}' ({code}) "
                                   f"while trying to {what}: check backups.store.provider") from None
            if code in ("NoSuchKey", "404", "NotFound"):
                raise OperationFailed(f"{what}: no such object") from None
            raise OperationFailed(f"the backup store failed to {what}: {code or exc}") from None
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectionClosedError) as exc:
            raise OperationFailed(f"the backup store does not answer ({exc}) while trying to {what}") from None

    def check(self) -> None:
        """The bucket exists and these credentials may use it (before anything else starts)."""
        self.call(f"reach bucket {self.bucket}", lambda: self.client.head_bucket(Bucket=self.bucket), bucket=True)

    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None,
                  content_type: str = "application/octet-stream") -> Stored:
        digest = hashlib.sha256(data).hexdigest()
        meta = {**(metadata or {}), "sha256": digest}
        self.call(f"write {self.where(key)}", lambda: self.client.put_object(
            Bucket=self.bucket, Key=self.root + key, Body=data, Metadata=meta, ContentType=content_type,
            **self._extra()))
        return Stored(key, len(data), digest)

    def put_json(self, key: str, document: dict[str, Any]) -> Stored:
        import json

        return self.put_bytes(key, json.dumps(document, indent=2, sort_keys=True).encode(), None, "application/json")

    def upload_stream(self, key: str, chunks: Iterable[bytes],
                      progress: Callable[[int], None] | None = None) -> Stored:
        """Stream ``chunks`` into one object (multipart above one part); returns its size and SHA-256.

        A failure aborts the multipart upload, so no half object is ever left behind."""
        digest = hashlib.sha256()
        buffer = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            for chunk in chunks:
                digest.update(chunk)
                buffer += chunk
                size += len(chunk)
                if len(buffer) >= PART_SIZE:
                    if upload_id is None:
                        upload_id = self._start_multipart(key)
                    parts.append(self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
                    buffer.clear()
                    if progress is not None:
                        progress(size)
            if upload_id is None:
                self.call(f"write {self.where(key)}", lambda: self.client.put_object(
                    Bucket=self.bucket, Key=self.root + key, Body=bytes(buffer),
                    Metadata={"sha256": digest.hexdigest()}, **self._extra()))
            else:
                if buffer:
                    parts.append(self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
                done = upload_id
                self.call(f"complete {self.where(key)}", lambda: self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=self.root + key, UploadId=done, MultipartUpload={"Parts": parts}))
        except BaseException:
            if upload_id is not None:
                aborted = upload_id
                with contextlib.suppress(Exception):  # the original error is what the operator needs
                    self.call(f"abort {self.where(key)}", lambda: self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=self.root + key, UploadId=aborted))
            raise
        if progress is not None:
            progress(size)
        return Stored(key, size, digest.hexdigest())

    def _start_multipart(self, key: str) -> str:
        started = self.call(f"start {self.where(key)}", lambda: self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self.root + key, **self._extra()))
        return str(started["UploadId"])

    def _part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        answer = self.call(f"write part {number} of {self.where(key)}", lambda: self.client.upload_part(
            Bucket=self.bucket, Key=self.root + key, UploadId=upload_id, PartNumber=number, Body=data))
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _get(self, key: str) -> Any:
        return self.call(f"read {self.where(key)}", lambda: self.client.get_object(
            Bucket=self.bucket, Key=self.root + key))

    def get_bytes(self, key: str, sha256: str | None = None) -> bytes:
        """The object's bytes, checked against ``sha256`` (else the digest in its metadata; one must exist)."""
        answer = self._get(key)
        data: bytes = answer["Body"].read()
        self._verify(key, hashlib.sha256(data).hexdigest(), sha256 or answer.get("Metadata", {}).get("sha256"))
        return data

    def get_json(self, key: str) -> dict[str, Any] | None:
        """A JSON document, or None when there is no such object."""
        import json

        if not self.exists(key):
            return None
        found: dict[str, Any] = json.loads(self.get_bytes(key))
        return found

    def exists(self, key: str) -> bool:
        import botocore.exceptions

        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=self.root + key)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code", "") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise
            return True

        return self.call(f"look up {self.where(key)}", head)

    def download(self, key: str, dest: Path, sha256: str) -> int:
        """Copy the object into ``dest``, checking its SHA-256 before anyone reads the file; returns its size."""
        answer = self._get(key)
        digest = hashlib.sha256()
        size = 0
        with open(dest, "wb") as out:
            for chunk in answer["Body"].iter_chunks(READ_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        self._verify(key, digest.hexdigest(), sha256)
        return size

    def _verify(self, key: str, actual: str, expected: str | None) -> None:
        if expected is None:
            raise ChecksumMismatch(f"{self.where(key)} carries no SHA-256: it was not written by drorch or was "
                                   "replaced; nothing was restored from it")
        if actual != expected:
            raise ChecksumMismatch(f"{self.where(key)} is corrupted: its SHA-256 is {actual[:16]}..., the backup "
                                   f"recorded {expected[:16]}...; nothing was restored from it")

    def listing(self, prefix: str, delimiter: str | None = None) -> tuple[list[Listed], list[str]]:
        """Objects under ``prefix`` (and, with a delimiter, the common prefixes), keys relative to ``root``."""
        objects: list[Listed] = []
        prefixes: list[str] = []
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.root + prefix}
            if delimiter:
                args["Delimiter"] = delimiter
            if token:
                args["ContinuationToken"] = token
            page = self.call(f"list {self.where(prefix)}", lambda a=args: self.client.list_objects_v2(**a))  # type: ignore[misc]
            objects += [Listed(o["Key"][len(self.root):], int(o["Size"]), o["LastModified"].timestamp())
                        for o in page.get("Contents", [])]
            prefixes += [p["Prefix"][len(self.root):] for p in page.get("CommonPrefixes", [])]
            if not page.get("IsTruncated"):
                return objects, prefixes
            token = page.get("NextContinuationToken")

    def delete(self, keys: list[str]) -> int:
        """Delete objects (in batches of 1,000, S3's limit); returns how many were asked for."""
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self.root + k} for k in keys[start:start + 1000]]
            answer = self.call(f"delete {len(batch)} objects under {self.where('')}", lambda b=batch: (  # type: ignore[misc]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": b, "Quiet": True})))
            errors = answer.get("Errors") or []
            if errors:
                raise OperationFailed(f"the store refused to delete {errors[0].get('Key')}: {errors[0].get('Code')}")
        return len(keys)
