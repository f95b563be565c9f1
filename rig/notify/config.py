"""The bench file's ``[[notify.webhook]]`` tables: where notifications go, in which form.

```toml
[[notify.webhook]]
url_env = "RIG_SLACK_URL"          # or url = "https://..."; a URL holding a token: use url_env
format = "slack"                   # "json" (default): the event document; "slack": {"text": ...}
events = ["run-finished", "slot-out-of-service"]    # default: every event
secret_env = "RIG_WEBHOOK_SECRET"  # optional: sign each body (X-Rig-Signature: sha256=HMAC)
timeout_seconds = 5                # one request's bound (default 5)
name = "lab channel"               # how logs and messages name it (default: scheme://host)
```

Read with the bench file's own TomlTable (errors name the file and the key, unknown keys are
refused); a URL is never printed, since Slack-style URLs carry their token in the path.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from rig.tomltable import TomlTable
from rig.vocabulary import NotifyEvent, WebhookFormat

DEFAULT_TIMEOUT_S = 5.0


class NotifyConfigError(ValueError):
    """A webhook cannot be used as configured (its URL's variable is not set)."""


def check_url(url: str) -> str | None:
    """Why ``url`` is no webhook URL, or None. Says nothing of the URL itself."""
    try:
        parts = urlsplit(url)
        parts.port                                  # noqa: B018 - raises on a bad port
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http:// or https:// URL with a host"
    return None


@dataclass(frozen=True)
class Webhook:
    """One receiver. The URL is kept out of ``repr`` (it may hold a token)."""

    url_text: str | None = field(default=None, repr=False)
    url_env: str | None = None
    format: WebhookFormat = WebhookFormat.JSON
    events: tuple[NotifyEvent, ...] = tuple(NotifyEvent)
    secret_env: str | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_S
    name: str = ""

    def url(self) -> str:
        """The URL, from the file or its environment variable (checked)."""
        if self.url_env is None:
            return self.url_text or ""
        value = os.environ.get(self.url_env)
        if not value:
            raise NotifyConfigError(f"webhook {self.label()}: environment variable "
                                    f"{self.url_env} is not set")
        why = check_url(value)
        if why:
            raise NotifyConfigError(f"webhook {self.label()}: ${self.url_env} is {why}")
        return value

    def secret(self) -> bytes | None:
        """The signing key from ``secret_env``, None without one."""
        if self.secret_env is None:
            return None
        value = os.environ.get(self.secret_env)
        if not value:
            raise NotifyConfigError(f"webhook {self.label()}: environment variable "
                                    f"{self.secret_env} is not set")
        return value.encode("utf-8")

    def label(self, url: str | None = None) -> str:
        """How logs name it: its ``name``, else scheme://host[:port] (never path, query or
        credentials), else the variable its URL is in."""
        if self.name:
            return self.name
        text = url if url is not None else self.url_text
        if text:
            parts = urlsplit(text)
            port = f":{parts.port}" if parts.port else ""
            return f"{parts.scheme}://{parts.hostname}{port}"
        return f"${self.url_env}"


@dataclass(frozen=True)
class NotifyConfig:
    """The bench's ``[notify]`` table."""

    webhooks: tuple[Webhook, ...] = ()


def read_notify(table: TomlTable) -> NotifyConfig:
    """``[notify]`` (``top.table("notify")``): its ``[[notify.webhook]]`` tables, checked."""
    raw = table.get("webhook", list, [], "a list of [[notify.webhook]] tables")
    table.done()
    return NotifyConfig(tuple(_webhook(TomlTable(table.path, f"{table.key('webhook')}[{i}]",
                                                 item, table.error))
                              for i, item in enumerate(raw)))


def _webhook(t: TomlTable) -> Webhook:
    given = t.secret_text("url")
    if given is None:
        raise t.fail("url", "missing (required: url, or url_env naming the variable)")
    url_text, url_env = given
    if url_text is not None and (why := check_url(url_text)):
        raise t.fail("url", why)
    webhook = Webhook(
        url_text=url_text, url_env=url_env,
        format=WebhookFormat(t.choice("format", WebhookFormat, WebhookFormat.JSON)),
        events=tuple(NotifyEvent(e) for e in t.choices("events", NotifyEvent,
                                                       tuple(NotifyEvent))),
        secret_env=t.get("secret_env", str, None),
        timeout_seconds=float(t.number("timeout_seconds", DEFAULT_TIMEOUT_S, low=0.1,
                                       high=120)),
        name=t.get("name", str, ""))
    t.done()
    if not webhook.events:
        raise t.fail("events", "an empty list: name at least one event, or drop the webhook")
    return webhook


def notify_lines(config: NotifyConfig) -> list[str]:
    """The ``[[notify.webhook]]`` tables as ``read_notify`` reads them back (rig.bench.dump)."""
    lines: list[str] = []
    for hook in config.webhooks:
        lines += ["", "[[notify.webhook]]"]
        if hook.url_env is not None:
            lines.append(f"url_env = {json.dumps(hook.url_env)}")
        else:
            lines.append(f"url = {json.dumps(hook.url_text)}")
        lines.append(f"format = {json.dumps(str(hook.format))}")
        lines.append("events = [" + ", ".join(json.dumps(str(e)) for e in hook.events) + "]")
        if hook.secret_env is not None:
            lines.append(f"secret_env = {json.dumps(hook.secret_env)}")
        lines.append(f"timeout_seconds = {hook.timeout_seconds!r}")
        if hook.name:
            lines.append(f"name = {json.dumps(hook.name)}")
    return lines
