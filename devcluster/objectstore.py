"""The local cluster's S3-compatible object store: SeaweedFS (`weed server -s3`: master,
volume server, filer and S3 gateway in one process), built from its Go module
(hack/store/build.sh), run as one more process of the cluster (`LocalCluster.spawn`), its
data under the state directory (`<state>/<name>/`).

Credentials are made at the first start (an access key and a secret, in the gateway's
identity file, readable by its owner only) and kept with the data, so a restart serves the
same objects to the same clients. `start` returns once the bucket exists and takes writes;
`Store.env()` is what jobgate's processes need to use it.

Nothing here ships: in a user's cluster the store is any S3 service (deploy/README.md).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import botocore.config
import botocore.exceptions

from . import procs
from .cluster import REPO_ROOT, ClusterError, LocalCluster, free_ports

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUILD_SCRIPT = REPO_ROOT / "hack" / "store" / "build.sh"
NAME = "objectstore"
BUCKET = "jobgate"
READY_TIMEOUT = 60.0  # seconds for the gateway to answer and take a first write
_PROBE_KEY = ".jobgate-ready"


def find_store_bin_dir() -> Path:
    """The directory of `weed`: $JOBGATE_STORE_BIN_DIR, else build.sh's answer (cached)."""
    return procs.built(BUILD_SCRIPT, override="JOBGATE_STORE_BIN_DIR", error=ClusterError)


@dataclasses.dataclass(frozen=True)
class Store:
    name: str  # the cluster's process
    endpoint: str  # the S3 gateway, http://127.0.0.1:<port>
    bucket: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """jobgate's settings (and boto3's credentials) for this store."""
        return {
            "JOBGATE_S3_ENDPOINT": self.endpoint,
            "JOBGATE_S3_BUCKET": self.bucket,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def client(self) -> S3Client:
        """A boto3 S3 client of the store (tests read and list with it)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=botocore.config.Config(
                s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=2
            ),
        )


def start(cluster: LocalCluster, *, name: str = NAME, bucket: str = BUCKET) -> Store:
    """Run the store as the cluster's process `name`; return once `bucket` takes writes."""
    weed = find_store_bin_dir() / "weed"
    home = cluster.state_dir / name
    (home / "data").mkdir(parents=True, exist_ok=True)
    identities = home / "s3.json"
    if not identities.exists():
        key, secret = f"JG{secrets.token_hex(9).upper()}", secrets.token_urlsafe(30)
        config = {
            "identities": [
                {
                    "name": "jobgate",
                    "credentials": [{"accessKey": key, "secretKey": secret}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        identities.touch(mode=0o600)
        identities.write_text(json.dumps(config))
    credentials = json.loads(identities.read_text())["identities"][0]["credentials"][0]
    master, volume, filer, s3, *grpc = free_ports(8)
    argv = [
        str(weed),
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={home / 'data'}",
        f"-master.port={master}",
        f"-master.port.grpc={grpc[0]}",
        "-master.telemetry=false",
        # Small volumes, and room for many: a dev cluster's disk is not a storage server's.
        "-master.volumeSizeLimitMB=256",
        "-volume.max=64",
        f"-volume.port={volume}",
        f"-volume.port.grpc={grpc[1]}",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={grpc[2]}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={grpc[3]}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={identities}",
    ]
    cluster.spawn(name, argv)
    store = Store(
        name=name,
        endpoint=f"http://127.0.0.1:{s3}",
        bucket=bucket,
        access_key=credentials["accessKey"],
        secret_key=credentials["secretKey"],
    )
    await_writable(cluster, store)
    return store


def await_writable(cluster: LocalCluster, store: Store) -> None:
    """Until the bucket exists and a write to it works (the first one waits for SeaweedFS to
    grow its volumes); `ClusterError` with the log's end if the store exits or never does."""
    s3 = store.client()
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if not cluster.alive(store.name):
            raise ClusterError(
                f"{store.name} exited; from {cluster.log_path(store.name)}:\n"
                f"{procs.failure_excerpt(cluster.log_path(store.name))}"
            )
        try:
            try:
                s3.create_bucket(Bucket=store.bucket)
            except botocore.exceptions.ClientError as e:
                if e.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise
            s3.put_object(Bucket=store.bucket, Key=_PROBE_KEY, Body=b"")
            return
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            if time.monotonic() > deadline:
                raise ClusterError(f"{store.name} took no write within {READY_TIMEOUT:.0f}s: {e}") from e
            time.sleep(0.2)
