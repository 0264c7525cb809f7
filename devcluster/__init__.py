"""The local Kubernetes control plane with fake node pools (see cluster.py)."""

from .cluster import COMPONENTS, ClusterError, LocalCluster, find_bin_dir

__all__ = ["COMPONENTS", "ClusterError", "LocalCluster", "find_bin_dir"]
