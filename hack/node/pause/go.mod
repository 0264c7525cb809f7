// Build-only module: the pause program of the local dev cluster's one real node (the
// process that holds each pod's namespaces). Our own code, no dependencies.
module jobgate.io/hack/node/pause

go 1.24.0
