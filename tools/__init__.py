"""Developer tools that run the repository's real code outside Juju and Kubernetes."""
