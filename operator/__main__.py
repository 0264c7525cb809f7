"""`python -m jobgate.operator` (or `jobgate-operator`): run the operator until SIGTERM/SIGINT.

Credentials: in-cluster (service account) when running in a pod, else $KUBECONFIG.
Configuration: environment variables, see README.md here.
"""

from __future__ import annotations

import os
import socket
import sys

import kopf

from jobgate.operator import alarms, config, handlers, kube, leadership, logs, metrics, queueing, reconciler


def main() -> None:
    try:
        settings = config.Config.from_env(os.environ)
        log_format = logs.format_from_env(os.environ)
    except config.ConfigError as e:
        sys.exit(f"jobgate-operator: {e}")
    kopf.configure(verbose=os.environ.get("JOBGATE_OPERATOR_DEBUG") == "1")
    logs.install(log_format)
    handlers.quiet_kopf()
    if settings.metrics_port is not None:
        metrics.serve(host=settings.metrics_host, port=settings.metrics_port)
    # With a Lease configured, a standby waits here (see leadership); the leader goes on.
    elector = leadership.lead(settings)
    wakeups: alarms.Alarms[reconciler.Key] = alarms.Alarms()
    queue: queueing.WorkQueue[reconciler.Key] = queueing.WorkQueue()
    reconciling = reconciler.Reconciler(
        kube=kube.Kube.connect(connections=settings.workers, instance=socket.gethostname()),
        config=settings,
        alarms=wakeups,
        queue=queue,
    )
    metrics.QUEUE_DEPTH.set_function(lambda: len(queue))
    try:
        kopf.run(
            registry=handlers.build_registry(
                reconciling=reconciling, alarms=wakeups, queue=queue, config=settings
            ),
            # No peering objects to write: one replica works, alone or as the Lease's holder.
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            liveness_endpoint=settings.liveness_endpoint,
        )
    finally:
        if elector is not None:
            elector.release()


if __name__ == "__main__":
    main()
