"""Where the fleet's PostgreSQL is, and how to name it without its password.

The connection string comes from an environment variable (``rig sync --to-env VAR``, default
``$RIG_FLEET_URL``), or a libpq service (``--service NAME``: ~/.pg_service.conf, with its
password in ~/.pgpass), or a URL on the command line that holds no password (libpq then finds
it in ~/.pgpass or $PGPASSWORD). A password on the command line is refused: it would be in
``ps``, the shell history and the systemd journal. TLS options (``sslmode``, ``sslrootcert``,
…) pass through to libpq untouched, in the URL or the service.

Whatever is printed or recorded is ``masked()``: user, host, port, database and options, never
the password.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: The environment variable ``rig sync`` reads the fleet's URL from by default.
DEFAULT_ENV = "RIG_FLEET_URL"

_SCHEMES = ("postgresql://", "postgres://")


class TargetError(ValueError):
    """No usable connection string: says which setting to fix, never echoes a password."""


def is_postgres_url(text: str | None) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL: a fleet, not a SQLite file."""
    return bool(text) and text.lower().startswith(_SCHEMES)


def resolve(to: str | None = None, to_env: str = DEFAULT_ENV, service: str | None = None,
            environ: Mapping[str, str] | None = None) -> str:
    """The libpq connection string to use, from (in this order) ``service``, ``to`` or the
    environment variable ``to_env``."""
    from psycopg.conninfo import make_conninfo
    env = os.environ if environ is None else environ
    if service:
        return make_conninfo(service=service)
    if to:
        if _fields(to).get("password"):
            raise TargetError("a password on the command line is refused: put the URL in "
                              f"${to_env} or the password in ~/.pgpass (or use --service)")
        return to
    value = env.get(to_env, "")
    if not value:
        raise TargetError(f"no fleet database: set ${to_env} to its postgresql:// URL, or use "
                          "--service NAME (a libpq service)")
    _fields(value)                       # a malformed string fails here, with no echo of it
    return value


def masked(conninfo: str) -> str:
    """The connection string as it may be printed: ``user@host:port/dbname`` and its options,
    the password replaced by ``***``."""
    fields = _fields(conninfo)
    if "service" in fields and "host" not in fields:
        return f"service={fields['service']}"
    user = fields.get("user", "")
    who = f"{user}{':***' if fields.get('password') else ''}@" if user else ""
    place = f"{fields.get('host', '')}{':' + fields['port'] if fields.get('port') else ''}"
    extra = sorted(f"{k}={v}" for k, v in fields.items()
                   if k not in ("user", "password", "host", "port", "dbname"))
    return (f"postgresql://{who}{place}/{fields.get('dbname', '')}"
            + (f" ({', '.join(extra)})" if extra else ""))


def _fields(conninfo: str) -> dict[str, str]:
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict
    try:
        return {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    except ProgrammingError:
        raise TargetError("the fleet database's connection string is not valid "
                          "(libpq could not parse it)") from None
