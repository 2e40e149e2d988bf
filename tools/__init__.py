# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Developer tools that run the repository's real code outside Juju and Kubernetes."""
