"""`python -m jobgate.api` (or `jobgate-api`): serve the API until SIGTERM/SIGINT.

Listens on 127.0.0.1:8265 unless `--host`/`--port` (or JOBGATE_API_HOST/JOBGATE_API_PORT)
say otherwise. Credentials: in-cluster when running in a pod, else $KUBECONFIG.
Configuration: environment variables, see README.md here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import kubernetes.config
import uvicorn

from jobgate.api import app, config, index, serving, store
from jobgate.core import logs
from jobgate.crds import policy

_SHUTDOWN_SECONDS = 30


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="jobgate-api", description="jobgate's HTTP job API")
    parser.add_argument(
        "--host", help=f"address to listen on (default $JOBGATE_API_HOST or {config.DEFAULT_HOST})"
    )
    parser.add_argument("--port", type=int, help=f"port (default $JOBGATE_API_PORT or {config.DEFAULT_PORT})")
    args = parser.parse_args(argv)
    try:
        settings = policy.load(config.Settings)
    except policy.SettingsError as e:
        sys.exit(f"jobgate-api: {e}")
    settings = settings.model_copy(
        update={"host": args.host or settings.host, "port": args.port or settings.port}
    )
    if refusal := config.unauthenticated_exposure(settings):
        sys.exit(f"jobgate-api: {refusal}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logs.install(settings.log_format)
    try:
        kube = store.Store.connect(job_index=index.JobIndex(), namespace_prefix=settings.namespace_prefix)
    except kubernetes.config.ConfigException as e:
        sys.exit(f"jobgate-api: no Kubernetes credentials (in-cluster or $KUBECONFIG): {e}")
    uvicorn.run(
        app.create_app(settings, kube=kube),
        host=settings.host,
        port=settings.port,
        log_level="info",
        log_config=None,  # uvicorn's lines go through the root logger, in the chosen format
        http=serving.BoundedHead,  # a request's head is bounded (431 past it)
        limit_concurrency=settings.max_connections,  # 503 past it
        # On SIGTERM, requests under way (a submit waiting for its pod to be scheduled, a
        # log tail) get this long to finish before they are cut.
        timeout_graceful_shutdown=_SHUTDOWN_SECONDS,
    )


if __name__ == "__main__":
    main()
