"""``rig verify``: ask one camera over HTTP whether it is back at its factory defaults."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rig.camera.http_evidence import HttpEvidence
    from rig.camera.isapi_types import Credentials
    from rig.verify import HttpFinding

DESCRIPTION = """\
Check over HTTP (ISAPI) whether a Hikvision camera is at factory defaults, spending at most one
login attempt (each failed login counts toward the camera's illegal-login lock).

Firmware V5.3 and later is inactive from the factory: GET /SDK/activateStatus says so without a
login. Older firmware ships active with admin/12345: then one login with that (or with --user and
the password in the environment variable named by --password-env) tells. With a working login,
model, serial, MAC, firmware and IPv4 settings are shown.
HTTP cannot tell apart two units on the same address: check one unit at a time."""

EPILOG = """\
exit status: 0 factory default, 1 not factory default, 2 usage error, 3 unreachable or
undecided (error, login locked on an unknown firmware)."""

EXIT_DEFAULT, EXIT_NOT_DEFAULT, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``verify`` subcommand to the rig CLI."""
    parser = sub.add_parser("verify",
                            help="check over HTTP whether a camera is at factory defaults",
                            description=DESCRIPTION, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=parse_target, metavar="HOST[:PORT]",
                        help="IPv4 address, host name or [IPv6] address, optionally with the "
                             "HTTP port (default 80), e.g. 192.168.1.64 or [fd00::64]:80")
    parser.add_argument("--user", metavar="U",
                        help="user for the one login (default: admin when --password-env is "
                             "given)")
    parser.add_argument("--password-env", metavar="VAR",
                        help="name of the environment variable holding the password for the one "
                             "login, instead of the factory admin/12345 (never the password "
                             "itself: a command line shows in the process list)")
    parser.add_argument("--password", dest="password_given", nargs="?", const=True,
                        default=None, help=argparse.SUPPRESS)   # refused: see run()
    parser.add_argument("--no-default-login", dest="try_default", action="store_false",
                        help="never try the factory login admin/12345 (spend no login unless "
                             "--password-env is given)")
    parser.add_argument("--timeout", type=_positive_seconds, default=5.0, metavar="S",
                        help="time each HTTP call may take as a whole: connect, headers and "
                             "body, seconds (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the evidence as JSON")
    parser.set_defaults(func=run)


def parse_target(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` → (host, port). IPv6 needs brackets when a port follows."""
    text = text.strip()
    port_text: str | None = None
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise argparse.ArgumentTypeError(f"{text!r}: write IPv6 as [ADDRESS] or "
                                             "[ADDRESS]:PORT")
        port_text = rest[1:] if rest else None
        _check_ipv6(host, text)
    elif text.count(":") > 1:
        host = text                     # a bare IPv6 address, no port
        _check_ipv6(host, text)
    else:
        host, colon, port_text = text.partition(":")
        if not colon:
            port_text = None
    if not host or any(c.isspace() or c in "/?#@" for c in host):
        raise argparse.ArgumentTypeError(f"{text!r} is not a host name or address")
    if port_text is None:
        return host, 80
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: port must be a number from 1 to 65535")
    return host, int(port_text)


def _check_ipv6(host: str, text: str) -> None:
    if "%" in host:
        raise argparse.ArgumentTypeError(f"{text!r}: IPv6 zone ids (%IF) are not supported; use "
                                         "a global or unique-local address")
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {host!r} is not an IPv6 address") from None


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError("timeout must be more than 0 and at most 600 seconds")
    return value


def credentials_from(args: argparse.Namespace) -> Credentials | None:
    """The login to try, from --user and the variable --password-env names; ValueError (never
    showing the password) when it is refused or cannot be sent."""
    from rig.camera.isapi_types import Credentials
    if args.password_given is not None:
        raise ValueError("--password would put the password on the command line (any user can "
                         "read it in the process list); put it in an environment variable and "
                         "give the variable's name: --password-env VAR")
    if args.password_env is None:
        if args.user is not None:
            raise ValueError("--user needs --password-env")
        return None
    password = os.environ.get(args.password_env)
    if password is None:
        raise ValueError(f"environment variable {args.password_env} is not set")
    try:
        return Credentials(args.user or "admin", password)
    except ValueError as exc:
        raise ValueError(f"login refused before sending: {exc}") from None


def run(args: argparse.Namespace) -> int:
    """Check the camera and print the evidence; see EPILOG for the exit status."""
    from rig.camera.http_evidence import check_http
    from rig.camera.isapi import IsapiClient
    from rig.camera.profiles import ProfileError, ProfileSet
    from rig.verify import classify_http

    try:
        credentials = credentials_from(args)
    except ValueError as exc:
        print(f"rig verify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        profiles = ProfileSet.load()
    except ProfileError as exc:
        print(f"rig verify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    host, port = args.target
    with IsapiClient(host, port, timeout=args.timeout) as client:
        evidence = check_http(client, profiles, credentials=credentials,
                              try_default=args.try_default)
    finding = classify_http(evidence)
    print(json.dumps(as_json(evidence, finding), indent=2) if args.json
          else format_evidence(evidence, finding))
    return exit_status(finding)


def as_json(evidence: HttpEvidence, finding: HttpFinding) -> dict[str, Any]:
    """The facts with the judge's finding (state, factory_default, verdict, reason) after the
    target, as ``rig verify --json`` has always printed them."""
    return {"target": evidence.target, **finding.to_json(), **evidence.to_json()}


def exit_status(finding: HttpFinding) -> int:
    if finding.factory_default is True:
        return EXIT_DEFAULT
    if finding.factory_default is False:
        return EXIT_NOT_DEFAULT
    return EXIT_UNKNOWN


def format_evidence(evidence: HttpEvidence, finding: HttpFinding) -> str:
    """The verdict line first, then what it rests on, for a person at the bench."""
    lines = [f"{'target:':<19}{evidence.target}", finding.text]

    def add(label: str, value: object) -> None:
        lines.append(f"  {label + ':':<17}{value}")

    if finding.reason not in finding.text:      # unreachable/error: the verdict says it all
        add("reason", finding.reason)
    status = _activate_status(evidence)
    if status is not None:
        add("activateStatus", status)
    check = evidence.user_check
    if evidence.login is not None:
        tried = evidence.login
        login = tried.text if tried.factory else f"as {tried.text}"
        if check is None:
            add("login", f"{login}: no answer")
        else:
            result = "accepted" if check.ok else f"rejected (HTTP {check.http_status})"
            add("login", f"{login}: {result}")
            add("lock", f"{check.lock_status or '-'}, retries left "
                        f"{_text(check.retry_login_time)}, unlock in {_text(check.unlock_time)} s")
            if check.is_default_password is not None:
                add("default pw", _text(check.is_default_password))
    add("logins spent", evidence.login_attempts)
    info = evidence.device_info
    if info is not None:
        add("model", info.model or "-")
        add("serial", info.serial_number or "-")
        add("MAC", info.mac_address or "-")
        add("firmware", " ".join(p for p in (info.firmware_version, info.firmware_released_date)
                                 if p) or "-")
    if evidence.profile:
        add("profile", evidence.profile)
    net = evidence.network
    if net is not None:
        mode = {True: "DHCP", False: "static", None: "addressing unknown"}[net.dhcp]
        add("IPv4", f"{net.ip_address or '-'}/{net.subnet_mask or '-'} gateway "
                    f"{net.gateway or '-'} ({mode})")
    for note in evidence.notes:
        add("note", note)
    return "\n".join(lines)


def _activate_status(evidence: HttpEvidence) -> str | None:
    """activateStatus's answer in words; an error answer reads as the endpoint missing (the
    check went on to a login, as for legacy firmware's 404)."""
    from rig.camera.http_evidence import RequestFailure
    status = evidence.activate_status
    error = evidence.activate_error
    if status is None:
        return ("no such endpoint (legacy firmware)"
                if error is not None and error.failure is RequestFailure.HTTP_ERROR else None)
    if not status.supported:
        return "no such endpoint (legacy firmware)"
    return f"Activated={_text(status.activated)}" + (
        f", supportVersion={status.support_version}" if status.support_version else "")


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
