# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Whether the pod has IPv6, so nginx listens on ``[::]`` only where it can.

nginx refuses to start when a ``listen [::]:<port>`` socket cannot be made, which is the case
on nodes booted without IPv6 (``ipv6.disable=1``). The charm container shares the pod's
network namespace with the nginx container, so what the charm sees is what nginx gets.
"""

from __future__ import annotations

IF_INET6 = "/proc/net/if_inet6"
"""The kernel's list of IPv6 addresses in this network namespace, one per line.

Absent when the kernel has no IPv6 at all, empty when IPv6 is disabled on every interface:
the same answer as whether ``ip -6 address show`` prints anything, without a subprocess.
"""


def pod_has_ipv6(if_inet6: str = IF_INET6) -> bool:
    """Whether the pod has at least one IPv6 address (``::1`` on loopback counts).

    Args:
        if_inet6: the address list to read; the kernel's by default.

    Returns:
        False when the list is missing, unreadable or empty.
    """
    try:
        with open(if_inet6, encoding="ascii", errors="replace") as addresses:
            return any(line.strip() for line in addresses)
    except OSError:
        return False
