"""Outbound webhook signing checked against the `standardwebhooks` package, the retry schedule, and
the receivers' config: a table of good and bad entries."""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from channels.webhook_out import signature
from outreach.config import load_settings
from outreach.errors import ConfigError
from outreach.outbound import backoff

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def test_our_signature_verifies_with_an_independent_implementation() -> None:
    now = int(time.time())
    body = '{"type":"stage.changed","timestamp":"2026-03-02T10:00:00Z","data":{}}'
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now),
               "webhook-signature": signature(SECRET, "msg_1", now, body)}
    assert Webhook(SECRET).verify(body, headers)["type"] == "stage.changed"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace("stage", "stagE"), headers)
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


@pytest.mark.parametrize(("attempts", "wait"), [(1, 5), (2, 10), (3, 20), (10, 2560), (11, 3600), (500, 3600)])
def test_backoff_doubles_up_to_an_hour(attempts: int, wait: int) -> None:
    assert backoff(attempts) == timedelta(seconds=wait)


@pytest.mark.parametrize(("entry", "error"), [
    ({"url": "https://crm.example.com/hooks", "secret": SECRET}, None),
    ({"url": "https://crm.example.com/hooks", "secret": SECRET, "events": ["stage.changed"]}, None),
    ({"url": "ftp://crm.example.com", "secret": SECRET}, "is not an http(s) URL"),
    ({"url": "https://x.example.com", "secret": "s3cret"}, "starts with whsec_"),
    ({"url": "https://x.example.com", "secret": "whsec_%%%"}, "not base64"),
    ({"url": "https://x.example.com", "secret": "whsec_" + base64.b64encode(b"short").decode()}, "5 bytes"),
    ({"url": "https://x.example.com", "secret": SECRET, "events": ["stage.moved"]}, "unknown event 'stage.moved'"),
    ({"url": "https://x.example.com", "secret": SECRET, "events": []}, "events is empty"),
])
def test_outbound_webhooks_config(tmp_path: Path, entry: dict[str, object], error: str | None) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"outbound_webhooks": [entry]}))
    if error is None:
        assert load_settings(tmp_path, environ={}).outbound_webhooks[0].url == entry["url"]
        return
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={})
    assert error in str(caught.value) and "config.yaml:" in str(caught.value)


@pytest.mark.parametrize(("retention", "error"), [
    ({"message_bodies": "180d", "provider_payloads": "13w"}, None),
    ({"message_bodies": "2h"}, "keep at least a day"),
    ({"provider_payloads": "soon"}, "is not a duration"),
])
def test_retention_config(tmp_path: Path, retention: dict[str, str], error: str | None) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"retention": retention}))
    if error is None:
        assert load_settings(tmp_path, environ={}).retention.provider_payloads == timedelta(weeks=13)
        return
    with pytest.raises(ConfigError, match=error):
        load_settings(tmp_path, environ={})
