"""The ISAPI wire: one HTTP request at a time, Digest by hand, built to spare the lockout.

A camera locks the client's address after a few failed logins (5-7, for 30 minutes;
docs/hikvision-protocols.md §2.5). On an unattended bench a lock costs a slot half an hour, so this
layer never authenticates behind the caller's back:

* Digest is built by hand (rig.camera.digest). An authenticated call first sends the request
  without Authorization (unauthenticated requests do not count toward the lock,
  docs/hikvision-protocols.md §2.1), reads the 401's Digest challenge, then sends exactly ONE
  request with Authorization. A 401 to that request is a failed login and is reported, never
  retried.
* The last challenge is cached per client, so the next call goes straight to one authenticated
  request. If the camera answers that with 401 and ``stale=true``, the nonce had expired, which is
  not a failed login (RFC 7616 section 3.3; docs/hikvision-protocols.md §2.1), and the call is
  re-sent ONCE with the fresh nonce. A 401 without ``stale=true`` is taken as a failed login. (A
  nonce called stale right after it was issued is reported as an IsapiError, not re-sent.) Use a
  fresh client after a camera reboots: firmware that forgets its nonces without saying ``stale``
  would count the cached one as a failure.
* No library auth handler, no HTTPAdapter retries (urllib3 ``Retry(total=0)``), no redirects, no
  ``.netrc`` or proxy from the environment (``.netrc`` would add a Basic login of its own), and a
  fresh connection per request (``Connection: close``): a keep-alive connection the camera has
  dropped would otherwise fail an authenticated request that nobody may re-send blindly.

Every call has a total deadline of ``timeout`` seconds, whatever it needs (connects, the
unsigned probe, the one signed request, headers and body): a peer that drips its reply a byte at a
time cannot hold a caller past it (rig.camera.transport.Deadline). Every body is read with a size
cap; transport failures come out as ConnectionFailed with a ``kind`` a caller can act on ("no
complete reply within N s" is kind "timeout").
"""

from __future__ import annotations

import errno
import http.client
import re
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import requests

from rig import __version__, xmlsafe
from rig.camera.digest import Challenge, DigestError, authorization, parse_challenge
from rig.camera.isapi_errors import (
    AuthenticationFailed,
    ConnectionFailed,
    IsapiError,
    MalformedReply,
    NotActivated,
)
from rig.camera.isapi_types import (
    Credentials,
    ResponseStatus,
    UserCheck,
    credentials_problem,
    int_or_none,
    parse_json,
)
from rig.camera.netif import BindRefused, InterfaceMissing
from rig.camera.transport import Deadline, Route, route_session

#: Largest reply body accepted. ISAPI replies are a few kB; anything far larger is not a camera.
MAX_BODY = 256 * 1024
_CHUNK = 16 * 1024


@dataclass(frozen=True)
class Reply:
    """One HTTP reply, body already read (capped) and the connection closed."""

    status: int
    body: bytes
    challenge: Challenge | None = None       # first usable Digest challenge offered
    challenge_problem: str | None = None     # why a Digest challenge offered was unusable
    content_type: str | None = None          # the Content-Type header, as sent


def _digest_challenge(values: Iterable[str]) -> tuple[Challenge | None, str | None]:
    """The first usable Digest challenge among WWW-Authenticate values, or why there is none.

    Values are split per scheme first: a server may join ``Digest ..., Basic realm=...`` in one
    header, and parsing that as one challenge would mix their parameters.
    """
    problems: list[str] = []
    for value in values:
        for part in _SCHEME_SPLIT.split(value):
            if not part.strip().lower().startswith("digest"):
                continue
            try:
                return parse_challenge(part), None
            except DigestError as exc:
                problems.append(str(exc))
    return None, "; ".join(problems) or None


_SCHEME_SPLIT = re.compile(r",\s*(?=(?:digest|basic|bearer|negotiate)\s)", re.IGNORECASE)


@dataclass
class _CachedChallenge:
    challenge: Challenge
    nc: int = 0


class IsapiHttp:
    """Requests to one camera over ``route``, with the login rules of the module docstring.

    A caller's ``session`` is used only to send: its auth, cookies, headers and environment
    settings are not applied, but its adapters are, so they must not retry. The cached
    challenge is guarded by a lock.
    """

    def __init__(self, route: Route, *, scheme: str, timeout: float,
                 session: requests.Session | None, verify: bool | str) -> None:
        self.route = route
        self.scheme = scheme
        self.timeout = timeout
        self._verify = verify
        self._session = session or route_session(route)
        self._owns_session = session is None
        self._lock = threading.Lock()
        self._cached: _CachedChallenge | None = None
        self._auth_requests = 0

    @property
    def auth_requests(self) -> int:
        """How many requests carrying Authorization were sent (each may cost a login)."""
        return self._auth_requests

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def where(self, method: str, path: str, detail: str) -> str:
        """An error message naming the target, method and path."""
        return f"{self.route.describe()} {method} {path}: {detail}"

    def malformed(self, method: str, path: str, detail: str,
                  status: int | None) -> MalformedReply:
        return MalformedReply(self.where(method, path, detail), http_status=status)

    def send(self, method: str, path: str, *, body: bytes | None = None,
             content_type: str | None = None, creds: Credentials | None = None,
             max_body: int = MAX_BODY) -> Reply:
        """One call. Without ``creds``: one request. With ``creds``: see the module docstring.
        The whole call (every request it needs, each connect, headers and body) must end within
        ``timeout`` seconds, else ConnectionFailed(kind="timeout"). ``max_body`` raises the
        body cap for the one endpoint that needs more (a snapshot is a JPEG, not a few kB)."""
        deadline = Deadline(self.timeout)
        try:
            if creds is None:
                return self._http(method, path, body, content_type, None, deadline, max_body)
            return self._send_signed(method, path, body, content_type, creds, deadline,
                                     max_body)
        finally:
            deadline.finish()

    def _send_signed(self, method: str, path: str, body: bytes | None,
                     content_type: str | None, creds: Credentials, deadline: Deadline,
                     max_body: int = MAX_BODY) -> Reply:
        """A call with ``creds``: at most one signed request (two on a cached nonce gone stale)."""
        with self._lock:
            cached = self._cached.challenge if self._cached else None
        if cached is None:
            first = self._http(method, path, body, content_type, None, deadline, max_body)
            if first.status != 401:
                return first          # the camera did not ask for a login: use the reply as is
            challenge = self._challenge_before_login(method, path, first)
            reply = self._authenticated(method, path, body, content_type, creds, challenge,
                                        deadline, max_body)
            if reply.status == 401 and reply.challenge and reply.challenge.stale:
                # A nonce we were handed a moment ago is already stale: do not guess, report.
                raise IsapiError(self.where(method, path, "HTTP 401: the camera called a "
                                             "nonce it had just issued stale"), http_status=401)
        else:
            reply = self._authenticated(method, path, body, content_type, creds, cached,
                                        deadline, max_body)
            if reply.status == 401 and reply.challenge and reply.challenge.stale:
                # The cached nonce expired: not a failed login. One re-send with the fresh nonce.
                reply = self._authenticated(method, path, body, content_type, creds,
                                            reply.challenge, deadline, max_body)
        if reply.status == 401:
            if reply.challenge is not None:
                with self._lock:      # the next call can go straight to one signed request
                    self._cached = _CachedChallenge(reply.challenge)
            raise self._login_failed(method, path, creds, reply)
        return reply

    def _authenticated(self, method: str, path: str, body: bytes | None,
                       content_type: str | None, creds: Credentials,
                       challenge: Challenge, deadline: Deadline,
                       max_body: int = MAX_BODY) -> Reply:
        """Send exactly one request with Authorization answering ``challenge``; none (and no
        login spent) when the deadline has already run out or the credentials cannot be sent."""
        if deadline.expired:
            raise self._out_of_time(method, path, deadline)
        problem = credentials_problem(creds.user, creds.password)
        if problem:
            raise IsapiError(self.where(method, path, f"login not sent: {problem}"))
        with self._lock:
            if self._cached is None or self._cached.challenge != challenge:
                self._cached = _CachedChallenge(challenge)
            self._cached.nc += 1
            nc = self._cached.nc
            self._auth_requests += 1

        def sign(uri: str) -> str:
            return authorization(challenge, method, uri, creds.user, creds.password, nc=nc)

        return self._http(method, path, body, content_type, sign, deadline, max_body)

    def _out_of_time(self, method: str, path: str, deadline: Deadline) -> ConnectionFailed:
        return ConnectionFailed(self.where(method, path, "timed out: no complete reply within "
                                            f"{deadline.seconds:g} s"), kind="timeout")

    def _challenge_before_login(self, method: str, path: str, reply: Reply) -> Challenge:
        """The challenge of an unauthenticated 401, unless the 401 says a login is pointless:
        an inactive camera (notActivated) or a locked one (no challenge offered)."""
        record = error_record(reply)
        if not_activated(record):
            raise NotActivated(self.where(method, path, "HTTP 401: camera is not activated"),
                               http_status=401,
                               response_status=record if isinstance(record, ResponseStatus)
                               else None)
        if reply.challenge is not None:
            return reply.challenge
        if reply.challenge_problem:
            raise IsapiError(self.where(method, path, f"HTTP 401: {reply.challenge_problem}"),
                             http_status=401)
        check = record if isinstance(record, UserCheck) else None
        raise AuthenticationFailed(
            self.where(method, path, "HTTP 401 without a Digest challenge"
                        + (" (login locked)" if check and check.locked else "")),
            user_check=check)

    def _login_failed(self, method: str, path: str, creds: Credentials,
                      reply: Reply) -> IsapiError:
        """The error for a signed request answered 401: a failed login (or an inactive unit)."""
        record = error_record(reply)
        if not_activated(record):
            return NotActivated(self.where(method, path, "HTTP 401: camera is not activated"),
                                http_status=401,
                                response_status=record if isinstance(record, ResponseStatus)
                                else None)
        check = record if isinstance(record, UserCheck) else None
        detail = f"HTTP 401: login as {creds.user!r} refused"
        if check is not None and check.locked:
            detail += f" (locked; unlock in {check.unlock_time} s)"
        elif check is not None and check.retry_login_time is not None:
            detail += f" (retries left: {check.retry_login_time})"
        return AuthenticationFailed(self.where(method, path, detail), user_check=check)

    def _http(self, method: str, path: str, body: bytes | None, content_type: str | None,
              sign: Callable[[str], str] | None, deadline: Deadline,
              max_body: int = MAX_BODY) -> Reply:
        """One HTTP request and its capped body, within what is left of ``deadline``. Maps every
        transport failure to IsapiError."""
        url = f"{self.scheme}://{self.route.url_authority()}{path}"
        headers = {"Host": self.route.host_header(self.scheme), "Connection": "close",
                   "Accept": "*/*", "User-Agent": f"rig/{__version__}"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            prepared = requests.Request(method, url, headers=headers, data=body).prepare()
        except (requests.RequestException, ValueError) as exc:
            raise IsapiError(self.where(method, path, f"bad request URL ({exc})")) from None
        if sign is not None:
            prepared.headers["Authorization"] = sign(prepared.path_url)
        with deadline.active():
            try:
                timeout = deadline.bound(self.timeout)
                response = self._session.send(prepared, timeout=(timeout, timeout),
                                              stream=True, allow_redirects=False, proxies={},
                                              verify=self._verify)
            except (requests.RequestException, OSError, http.client.HTTPException) as exc:
                if deadline.expired:
                    raise self._out_of_time(method, path, deadline) from None
                kind, text = _failure(exc)
                raise ConnectionFailed(self.where(method, path, text), kind=kind) from None
            try:
                return self._reply(method, path, response, deadline, max_body)
            finally:
                response.close()
                deadline.release()

    def _reply(self, method: str, path: str, response: requests.Response,
               deadline: Deadline, max_body: int = MAX_BODY) -> Reply:
        data = self._read_body(method, path, response, deadline, max_body)
        raw_headers = getattr(response.raw, "headers", None)
        if raw_headers is not None and hasattr(raw_headers, "getlist"):
            offered = raw_headers.getlist("WWW-Authenticate")
        else:
            offered = [response.headers.get("WWW-Authenticate") or ""]
        challenge, problem = _digest_challenge(offered)
        return Reply(status=response.status_code, body=data, challenge=challenge,
                     challenge_problem=problem,
                     content_type=response.headers.get("Content-Type"))

    def _read_body(self, method: str, path: str, response: requests.Response,
                   deadline: Deadline, max_body: int = MAX_BODY) -> bytes:
        """The body, at most ``max_body`` bytes, before ``deadline`` (a dripping sender is cut off;
        a body cut short by the deadline's watchdog is a timeout, never a short reply)."""
        declared = int_or_none(response.headers.get("Content-Length"))
        if declared is not None and declared > max_body:
            raise self.malformed(method, path, f"reply of {declared} bytes is larger than the "
                                  f"{max_body}-byte limit", response.status_code)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > max_body:
                    raise self.malformed(method, path, f"reply is larger than the {max_body}-"
                                          "byte limit", response.status_code)
                chunks.append(chunk)
                if deadline.expired:
                    break
        except (requests.RequestException, OSError, http.client.HTTPException) as exc:
            if deadline.expired:
                raise self._out_of_time(method, path, deadline) from None
            kind, text = _failure(exc)
            raise ConnectionFailed(self.where(method, path, f"reading the reply: {text}"),
                                   kind=kind) from None
        if deadline.expired:
            raise self._out_of_time(method, path, deadline)
        return b"".join(chunks)


def error_record(reply: Reply) -> ResponseStatus | UserCheck | None:
    """What a refusal's body says: a ResponseStatus (XML or JSON), a userCheck, or nothing."""
    text = reply.body.lstrip()
    try:
        if text.startswith(b"{"):
            data = parse_json(text)
            return ResponseStatus.from_json(data) if isinstance(data, dict) else None
        if text.startswith(b"<"):
            root = xmlsafe.parse(text, max_bytes=MAX_BODY)
            if xmlsafe.local_name(root.tag).lower() == "usercheck":
                return UserCheck.from_xml(root, reply.status)
            return ResponseStatus.from_xml(root)
    except (ValueError, UnicodeDecodeError):
        return None
    return None


def not_activated(record: ResponseStatus | UserCheck | None) -> bool:
    """A refusal that says the camera is inactive (ResponseStatus notActivated, or a userCheck
    with isActivated=false)."""
    if isinstance(record, ResponseStatus):
        return record.sub_status_code.lower() == "notactivated"
    return isinstance(record, UserCheck) and record.is_activated is False


def _failure(exc: BaseException) -> tuple[str, str]:
    """(kind, text) for a transport failure: refused, reset, timeout, unreachable, name, other."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "timeout", "timed out connecting"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "timeout", "timed out waiting for the reply"
    for cause in _causes(exc):
        if isinstance(cause, InterfaceMissing):
            return "interface", str(cause)
        if isinstance(cause, BindRefused):
            return "permission", str(cause)
        if isinstance(cause, ConnectionRefusedError):
            return "refused", "connection refused (nothing listens on that port)"
        if isinstance(cause, ConnectionResetError | BrokenPipeError):
            return "reset", "connection reset by the camera"
        if isinstance(cause, http.client.RemoteDisconnected):
            return "reset", "connection closed by the camera without a reply"
        if isinstance(cause, socket.gaierror):
            return "name", f"host name could not be resolved ({cause})"
        if isinstance(cause, TimeoutError):
            return "timeout", "timed out"
        if isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH,
                                                          errno.ENETDOWN, errno.EADDRNOTAVAIL):
            return "unreachable", f"no route to the camera ({cause.strerror})"
    return "other", f"HTTP request failed ({type(exc).__name__}: {exc})"


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything it wraps (requests → urllib3 → socket), without cycles."""
    seen: list[BaseException] = []
    stack = [exc]
    while stack:
        item = stack.pop()
        if any(item is s for s in seen):
            continue
        seen.append(item)
        nested = [item.__cause__, item.__context__, getattr(item, "reason", None),
                  *(a for a in item.args if isinstance(a, BaseException))]
        stack.extend(n for n in nested if isinstance(n, BaseException))
    return seen
