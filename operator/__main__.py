"""`python -m jobgate.operator` (or `jobgate-operator`): run the operator until SIGTERM/SIGINT.

Credentials: in-cluster (service account) when running in a pod, else $KUBECONFIG.
Configuration: environment variables, see README.md here.
"""

from __future__ import annotations

import os
import socket
import sys

import kopf

from jobgate.operator import alarms, config, handlers, kube, queueing, reconciler


def main() -> None:
    try:
        settings = config.Config.from_env(os.environ)
    except config.ConfigError as e:
        sys.exit(f"jobgate-operator: {e}")
    kopf.configure(verbose=os.environ.get("JOBGATE_OPERATOR_DEBUG") == "1")
    handlers.quiet_kopf()
    wakeups: alarms.Alarms[reconciler.Key] = alarms.Alarms()
    queue: queueing.WorkQueue[reconciler.Key] = queueing.WorkQueue()
    reconciling = reconciler.Reconciler(
        kube=kube.Kube.connect(connections=settings.workers, instance=socket.gethostname()),
        config=settings,
        alarms=wakeups,
        queue=queue,
    )
    kopf.run(
        registry=handlers.build_registry(
            reconciling=reconciling, alarms=wakeups, queue=queue, config=settings
        ),
        standalone=True,  # no peering objects to write; run one replica (see README.md)
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=settings.liveness_endpoint,
    )


if __name__ == "__main__":
    main()
