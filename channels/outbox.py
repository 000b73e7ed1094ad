"""The embedded default provider: nothing leaves the machine. The dispatcher stores every rendered
message anyway, so the outbox only has to hand back an id and say so in the log."""

from __future__ import annotations

import logging
import uuid

from channels.base import OutgoingMessage, Provider, SendResult

log = logging.getLogger(__name__)


class OutboxProvider(Provider):
    name = "outbox"

    def send(self, message: OutgoingMessage) -> SendResult:
        to = message.to_phone if message.channel == "sms" else message.to_email
        log.info("outbox: %s touch %s to %s kept in the outbox, not sent", message.channel,
                 message.touch_id, to)
        return SendResult(self.name, f"outbox-{uuid.uuid4().hex}")
