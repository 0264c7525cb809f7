"""jobgate: a Kubernetes-native job service (HTTP API -> Job custom resource -> operator -> pod).

The code lives in the top-level folders `api/`, `crds/`, `operator/` and `devcluster/`;
this package only gives them namespaced import names (`jobgate.operator`, ...), so that
the folder `operator/` never shadows the standard library's `operator` module.
"""
