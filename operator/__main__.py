"""`python -m jobgate.operator` (or `jobgate-operator`): run the operator until SIGTERM/SIGINT.

Credentials: in-cluster (service account) when running in a pod, else $KUBECONFIG.
Configuration: environment variables, see README.md here.
"""

from __future__ import annotations

import socket
import sys

import kopf

from jobgate.core import client, events, jobs, logs, objectstore, pods
from jobgate.crds import policy
from jobgate.operator import alarms, archiver, config, handlers, leadership, metrics, queueing, reconciler

COMPONENT = "jobgate-operator"  # the events' source, as `kubectl describe` shows it


def main() -> None:
    try:
        settings = policy.load(config.Config)
    except policy.SettingsError as e:
        sys.exit(f"jobgate-operator: {e}")
    kopf.configure(verbose=settings.debug)
    logs.install(settings.log_format)
    handlers.quiet_kopf()
    if settings.metrics_port is not None:
        metrics.serve(host=settings.metrics_host, port=settings.metrics_port)
    # With a Lease configured, a standby waits here (see leadership); the leader goes on.
    elector = leadership.lead(settings)
    wakeups: alarms.Alarms[reconciler.Key] = alarms.Alarms()
    queue: queueing.WorkQueue[reconciler.Key] = queueing.WorkQueue()
    # One connection per thread: the reconciler's workers, and the log archive's workers,
    # followed logs and sweep.
    archiving = settings.log_archive_workers + settings.log_archive_max_follows + 1
    kube = client.Client.connect(connections=settings.workers + archiving)
    job_api, pod_api = jobs.Jobs(kube), pods.Pods(kube)
    store = objectstore.ObjectStore.connect(settings, connections=settings.log_archive_workers + 1)
    archive = None
    if store is not None:
        archive = archiver.Archiver(store=store, job_api=job_api, pod_api=pod_api, config=settings)
        archive.start()
    reconciling = reconciler.Reconciler(
        job_api=job_api,
        pod_api=pod_api,
        recorder=events.Recorder(kube, component=COMPONENT, instance=socket.gethostname()),
        config=settings,
        alarms=wakeups,
        queue=queue,
        archiver=archive,
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
