"""What an ISAPI call raises: ``IsapiError`` and the failures a caller tells apart.

A module of its own because two layers raise them (rig.camera.isapi_http, the wire and its
login rules; rig.camera.isapi, the endpoints) and callers that only catch them (the verifier,
the procedures) need neither. Every message names the target (address, port, zone or
interface), the method and the path; no requests or XML exception leaves the client.
"""

from __future__ import annotations

from rig.camera.isapi_types import ResponseStatus, UserCheck


class IsapiError(Exception):
    """A call that did not give a usable answer. ``str()`` names host:port, method and path."""

    def __init__(self, message: str, *, http_status: int | None = None,
                 response_status: ResponseStatus | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.response_status = response_status


class ConnectionFailed(IsapiError):
    """No HTTP reply (``kind`` says why): "refused", "reset", "timeout", "unreachable", "name"
    (unresolvable), "interface" (the zone's or bound interface does not exist), "permission"
    (SO_BINDTODEVICE refused: Linux < 5.7 without CAP_NET_RAW) or "other"."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class AuthenticationFailed(IsapiError):
    """The camera rejected the credentials (one failed login was spent, or it is locked)."""

    def __init__(self, message: str, *, user_check: UserCheck | None = None,
                 http_status: int | None = 401) -> None:
        super().__init__(message, http_status=http_status)
        self.user_check = user_check


class NotActivated(IsapiError):
    """The camera is inactive (factory state of V5.3+ firmware) and refuses the call."""


class AlreadyActivated(IsapiError):
    """Activation refused because the camera already has a password (``hasActivated``)."""


class MalformedReply(IsapiError):
    """A reply that cannot be read: bad XML/JSON, wrong root element, or oversized."""
