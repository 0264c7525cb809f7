"""jobgate's benchmarks and fault suite, run against a fresh local control plane.

    python -m jobgate.bench           # throughput, latency, scale beside the peers (make bench)
    python -m jobgate.bench.faults    # kill every process under load, abuse, load (make faults)

`stack` runs jobgate's processes on a `jobgate.devcluster.LocalCluster`; `measure` holds
the timing and /proc helpers both share. Nothing here ships in the product image.
"""
