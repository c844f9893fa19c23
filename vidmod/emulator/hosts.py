"""Which ``Host`` headers name this machine. The local endpoint and the reviewer portal answer only those: a page
elsewhere that re-points a name of its own at 127.0.0.1 (DNS rebinding) still sends that name."""

from __future__ import annotations

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def host_name(header: str) -> str:
    """A ``Host`` header without its port, lower case: ``[::1]:8080`` → ``::1``, ``LocalHost:80`` → ``localhost``."""
    host = header.lower()
    return host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
