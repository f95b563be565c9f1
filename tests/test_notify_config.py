"""The bench file's ``[[notify.webhook]]`` tables: read and checked with errors that name the
key (never the URL), written back by ``rig.bench.dump``, resolved from the environment."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rig.bench import BenchError, load_bench
from rig.commands.check import as_json, as_text
from rig.notify.config import NotifyConfigError, Webhook
from rig.vocabulary import NotifyEvent, WebhookFormat
from tests.test_bench_file import GOOD, round_trip, write

HOOKS = """
[[notify.webhook]]
url = "https://hooks.example.net/rig"
secret_env = "RIG_TEST_SIGNING"

[[notify.webhook]]
url_env = "RIG_TEST_SLACK_URL"
format = "slack"
events = ["run-finished", "slot-out-of-service"]
timeout_seconds = 2.5
name = "lab channel"
"""


def test_webhooks_are_read_with_their_defaults_and_dumped_back(tmp_path):
    bench = load_bench(write(tmp_path, GOOD + HOOKS))
    plain, slack = bench.notify.webhooks
    assert plain == Webhook(url_text="https://hooks.example.net/rig",
                            secret_env="RIG_TEST_SIGNING")
    assert plain.events == tuple(NotifyEvent) and plain.format is WebhookFormat.JSON
    assert slack.format is WebhookFormat.SLACK and slack.url_env == "RIG_TEST_SLACK_URL"
    assert slack.events == (NotifyEvent.RUN_FINISHED, NotifyEvent.SLOT_OUT_OF_SERVICE)
    shown = as_text(bench) + json.dumps(as_json(bench))          # rig check, by label only
    assert "webhook lab channel: slack" in shown and "example.net/rig" not in shown
    text = GOOD.replace('priv_key = "privpriv123"', 'priv_key_env = "RIG_TEST_PRIV"')
    bench = load_bench(write(tmp_path, text + HOOKS))
    assert round_trip(bench, tmp_path) == bench
    assert load_bench(write(tmp_path, GOOD)).notify.webhooks == ()


@pytest.mark.parametrize(("hook", "expected"), [
    ('url = "ftp://x.example/T0KEN"', "notify.webhook[0].url: not an http:// or https:// URL"),
    ('url = "https://x.example/T0KEN"\nformat = "xml"', "notify.webhook[0].format: 'xml' is not"),
    ('url = "https://x.example/T0KEN"\nevents = ["boot"]', "notify.webhook[0].events: 'boot'"),
    ('url = "https://x.example/T0KEN"\nevents = []', "notify.webhook[0].events: an empty list"),
    ('url = "https://x.example/T0KEN"\nheaders = 1', "notify.webhook[0].headers: unknown key"),
    ('format = "json"', "notify.webhook[0].url: missing"),
])
def test_a_bad_webhook_is_refused_naming_the_key_not_the_url(tmp_path, hook, expected):
    with pytest.raises(BenchError) as caught:
        load_bench(write(tmp_path, GOOD + f"\n[[notify.webhook]]\n{hook}\n"))
    assert expected in str(caught.value) and "T0KEN" not in str(caught.value)


def test_the_url_and_secret_come_from_the_environment_and_are_checked(monkeypatch):
    hook = Webhook(url_env="RIG_TEST_URL", secret_env="RIG_TEST_KEY")
    with pytest.raises(NotifyConfigError, match="RIG_TEST_URL is not set"):
        hook.url()
    monkeypatch.setenv("RIG_TEST_URL", "gopher://T0KEN")
    with pytest.raises(NotifyConfigError) as caught:
        hook.url()
    assert "T0KEN" not in str(caught.value)
    monkeypatch.setenv("RIG_TEST_URL", "https://u:pw@hooks.slack.example:8443/T/B/T0KEN")
    monkeypatch.setenv("RIG_TEST_KEY", "k")
    assert hook.url().endswith("T0KEN") and hook.secret() == b"k"
    assert hook.label(hook.url()) == "https://hooks.slack.example:8443"
    assert dataclasses.replace(hook, name="lab").label() == "lab"
