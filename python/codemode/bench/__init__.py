"""``codemode bench``: the shared workloads on every engine installed here, beside the peers."""
