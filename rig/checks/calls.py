"""The ISAPI requests of one functional check, within the check's own time.

Why not more methods on IsapiClient: the checks need a dozen endpoints of their own, and the
client stays the bench's core (rig.camera.isapi). Here every request goes through
``IsapiClient.send`` (one signed request per call, the login rules of rig.camera.isapi_http),
each call first asks whether the check's time is spent (``CheckTimeout``), and a refusal that
says "this unit has no such function" (403/404 ``notSupport``, or a plain 404) comes out as
``NotSupported`` so that a check can report ``skipped`` instead of ``unknown``.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TypeVar

from rig import xmlsafe
from rig.camera.isapi import IsapiClient
from rig.camera.isapi_errors import IsapiError, MalformedReply, NotActivated
from rig.camera.isapi_http import MAX_BODY, Reply, error_record, not_activated
from rig.camera.isapi_types import Credentials, DeviceInfo, ResponseStatus

_XML = "application/xml; charset=UTF-8"
_Record = TypeVar("_Record")


class CheckTimeout(TimeoutError):
    """The check's own time ran out before it could send its next request."""


class LoginRefused(Exception):
    """A signed request other than ISAPI's (RTSP) was refused: one failed login was spent."""


class NotSupported(IsapiError):
    """The unit says it has no such function (403/404 with ``notSupport``, or a 404)."""


class CheckCalls:
    """One check's requests: ``client`` with ``creds``, until ``seconds`` have passed."""

    def __init__(self, client: IsapiClient, creds: Credentials, seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.creds = creds
        self.seconds = seconds
        self.clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        """Seconds left of the check's time (a poll or the RTSP session is bounded by it)."""
        return max(self._end - self.clock(), 0.0)

    def _check_time(self, method: str, path: str) -> None:
        if self.remaining() <= 0:
            raise CheckTimeout(f"{self.client.target} {method} {path}: not sent: the check's "
                               f"{self.seconds:g} s ran out")

    def send(self, method: str, path: str, body: str | None = None,
             max_body: int = MAX_BODY) -> Reply:
        """One signed request; raises for anything but 2xx (NotSupported, NotActivated,
        IsapiError naming the status and the camera's statusString)."""
        self._check_time(method, path)
        reply = self.client.send(method, path, self.creds,
                                 body=body.encode("utf-8") if body is not None else None,
                                 content_type=_XML if body is not None else None,
                                 max_body=max_body)
        if 200 <= reply.status < 300:
            return reply
        raise self._refusal(method, path, reply)

    def _refusal(self, method: str, path: str, reply: Reply) -> IsapiError:
        record = error_record(reply)
        status = record if isinstance(record, ResponseStatus) else None
        where = f"{self.client.target} {method} {path}: HTTP {reply.status}"
        if not_activated(record):
            return NotActivated(f"{where}: camera is not activated", http_status=reply.status)
        sub = status.sub_status_code if status else ""
        if reply.status == 404 or (reply.status == 403 and sub.lower() == "notsupport"):
            return NotSupported(f"{where}: {sub or 'no such endpoint'}",
                                http_status=reply.status, response_status=status)
        detail = f"{where}: {status.status_string} ({sub})" if status else where
        return IsapiError(detail, http_status=reply.status, response_status=status)

    def get_xml(self, path: str) -> ET.Element:
        """GET ``path`` and parse its XML body (MalformedReply when it cannot be read)."""
        reply = self.send("GET", path)
        return self.parse(path, reply)

    def parse(self, path: str, reply: Reply) -> ET.Element:
        """The reply's XML through rig.xmlsafe; MalformedReply naming the path."""
        try:
            return xmlsafe.parse(reply.body, max_bytes=MAX_BODY, what="reply")
        except xmlsafe.XmlError as exc:
            raise MalformedReply(f"{self.client.target} {path}: {exc}",
                                 http_status=reply.status) from None

    def read(self, path: str, build: Callable[[ET.Element], _Record]) -> _Record:
        """GET ``path`` and build a record from it; a body that is not the record is a
        MalformedReply naming the path."""
        root = self.get_xml(path)
        try:
            return build(root)
        except ValueError as exc:
            raise MalformedReply(f"{self.client.target} GET {path}: {exc}") from None

    def put_xml(self, path: str, body: str | None = None) -> ResponseStatus:
        """PUT ``body`` (XML) and read the ResponseStatus; IsapiError when it is not OK."""
        reply = self.send("PUT", path, body)
        root = self.parse(path, reply)
        try:
            status = ResponseStatus.from_xml(root)
        except ValueError as exc:
            raise MalformedReply(f"{self.client.target} PUT {path}: {exc}") from None
        if not status.ok:
            raise IsapiError(f"{self.client.target} PUT {path}: statusCode "
                             f"{status.status_code} {status.status_string} "
                             f"({status.sub_status_code})", response_status=status)
        return status

    def device_info(self) -> DeviceInfo:
        """deviceInfo (model, serial, firmware, MAC), read once by the runner after its login."""
        return self.read("/ISAPI/System/deviceInfo", DeviceInfo.from_xml)
