"""Email through any SMTP server, with the standard library.

A meeting invite is laid out as Outlook and Google Calendar expect to offer Accept/Decline:

    multipart/mixed
      multipart/alternative
        text/plain
        text/html                          (when the message has html)
        text/calendar; method=REQUEST      the invite itself
      application/ics  invite.ics          the same invite, for clients that only save files
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from channels.base import OutgoingMessage, Provider, ProviderError, SendResult

log = logging.getLogger(__name__)

TOUCH_HEADER = "X-Outreach-Touch-Id"
INVITE_FILENAME = "invite.ics"


def _message_id(message: OutgoingMessage) -> str:
    if message.message_id:
        mid = message.message_id.strip()
        return mid if mid.startswith("<") else f"<{mid}>"
    return make_msgid(domain=message.from_email.rpartition("@")[2] or None)


def build_email(message: OutgoingMessage) -> EmailMessage:
    """The RFC 5322 message for one touch. Raises a permanent ProviderError for a message that
    cannot be written (no recipient, a header value with a line break)."""
    if not message.to_email:
        raise ProviderError(f"touch {message.touch_id} has no email address to send to", retryable=False)
    msg = EmailMessage()
    try:
        msg["From"] = formataddr((message.from_name, message.from_email))
        msg["To"] = ", ".join(formataddr((n or "", e)) for e, n in [(message.to_email, message.to_name),
                                                                    *message.also_to])
        msg["Subject"] = message.subject or ""
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = _message_id(message)
        if message.reply_to:
            msg["Reply-To"] = ", ".join([message.reply_to, *message.reply_to_also])
        for name, value in message.headers.items():
            del msg[name]  # a header given twice would be two headers, not an override
            msg[name] = value
        msg[TOUCH_HEADER] = str(message.touch_id)
        msg.set_content(message.text)
        if message.html:
            msg.add_alternative(message.html, subtype="html")
        if message.calendar:
            msg.add_alternative(message.calendar, subtype="calendar", params={"method": "REQUEST"})
            msg.add_attachment(message.calendar.encode(), maintype="application", subtype="ics",
                               filename=INVITE_FILENAME)
    except ValueError as exc:  # header injection attempts and malformed values
        raise ProviderError(f"touch {message.touch_id} cannot be written as an email: {exc}",
                            retryable=False) from exc
    return msg


def _refusal(code: int, text: bytes | str, what: str) -> ProviderError:
    """SMTP's own split: 4xx is a passing condition, 5xx a final refusal."""
    detail = text.decode(errors="replace") if isinstance(text, bytes) else text
    return ProviderError(f"SMTP server {what}: {code} {detail}", retryable=not 500 <= code < 600,
                         code=code, status=code)


class SmtpProvider(Provider):
    """Sends over one SMTP session per thread, reused while the server keeps it open."""

    name = "smtp"

    def __init__(self, host: str, port: int, username: str = "", password: str = "", starttls: bool = False,
                 timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sessions: set[smtplib.SMTP] = set()

    def _open(self) -> smtplib.SMTP:
        session = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with self._lock:
            self._sessions.add(session)
        if self.starttls:
            session.starttls(context=ssl.create_default_context())
        if self.username:
            session.login(self.username, self.password)
        return session

    def _session(self) -> smtplib.SMTP:
        session: smtplib.SMTP | None = getattr(self._local, "session", None)
        if session is not None:
            try:  # servers drop idle sessions; find out before handing the message over
                if session.noop()[0] == 250:
                    return session
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()
        self._local.session = session = self._open()
        return session

    def _drop(self) -> None:
        session: smtplib.SMTP | None = getattr(self._local, "session", None)
        self._local.session = None
        if session is not None:
            self._quit(session)

    def _quit(self, session: smtplib.SMTP) -> None:
        with self._lock:
            self._sessions.discard(session)
        try:
            session.quit()
        except (smtplib.SMTPException, OSError):
            session.close()

    def send(self, message: OutgoingMessage) -> SendResult:
        email = build_email(message)
        assert message.to_email is not None  # build_email refused it otherwise
        try:
            to_addrs = [message.to_email, *(e for e, _n in message.also_to)]
            self._session().send_message(email, from_addr=message.from_email, to_addrs=to_addrs)
        except smtplib.SMTPRecipientsRefused as exc:
            self._drop()
            code, text = next(iter(exc.recipients.values()))
            raise _refusal(code, text, f"refused {message.to_email}") from exc
        except smtplib.SMTPResponseException as exc:  # sender, data, auth, greeting refused
            self._drop()
            raise _refusal(exc.smtp_code, exc.smtp_error, "refused the message") from exc
        except smtplib.SMTPNotSupportedError as exc:  # e.g. STARTTLS configured, server lacks it
            self._drop()
            raise ProviderError(f"SMTP server {self.host}:{self.port}: {exc}", retryable=False) from exc
        except (smtplib.SMTPServerDisconnected, OSError) as exc:  # refused, reset, timed out
            self._drop()
            raise ProviderError(f"SMTP server {self.host}:{self.port} unreachable or hung up: {exc}",
                                retryable=True) from exc
        except smtplib.SMTPException as exc:
            self._drop()
            raise ProviderError(f"SMTP server {self.host}:{self.port}: {exc}", retryable=False) from exc
        return SendResult(self.name, str(email["Message-ID"]).strip().strip("<>"))

    def close(self) -> None:
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            self._quit(session)
        self._local = threading.local()
