"""Sending reminder e-mails: one interface, four backends chosen by DUEFLOW_EMAIL_BACKEND.

Backends raise exactly two kinds of error, because the caller can do exactly two things:
`TransientEmailError` (answer 5xx so the broker redelivers later) and `PermanentEmailError` (mark
the reminder failed). Anything an operator can fix without changing the message (credentials,
TLS, a server that is down) is transient: the retry after the fix then delivers it.

Backend modules are imported only by `backend_from_config`, so a cold start pays for the one it
uses (the SendGrid SDK alone takes tens of milliseconds to import).
"""

from __future__ import annotations

import binascii
import functools
import re
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage, Message
from email.utils import formataddr, formatdate, parseaddr
from typing import Protocol

from dueflow import config
from dueflow.config import ConfigError

__all__ = [
    "Email",
    "EmailBackend",
    "EmailError",
    "PermanentEmailError",
    "TransientEmailError",
    "backend_from_config",
    "mime_bytes",
    "to_mime",
]


@dataclass(frozen=True)
class Email:
    to: str  # one address
    sender: str  # From, may be "Name <addr>"
    subject: str
    text: str  # plain-text body (UTF-8, may contain non-ASCII)
    message_id: str  # "<...@dueflow>", stable per reminder instance so receivers can deduplicate
    key: str  # filesystem-safe idempotency key, e.g. "r-<uuid>-20261201T080000Z"


class EmailError(Exception):
    """Sending failed."""


class TransientEmailError(EmailError):
    """May succeed later unchanged: the caller answers 5xx so the broker retries."""


class PermanentEmailError(EmailError):
    """Will never succeed as is: the caller marks the reminder failed."""


class EmailBackend(Protocol):
    name: str  # "outbox" | "smtp" | "sendgrid" | "dapr"

    def send(self, email: Email) -> None: ...


def to_mime(email: Email) -> Message:
    """The RFC 5322 message that the outbox writes and SMTP sends (one builder, one format).

    Built with the stdlib's compat32 classes: the same message as `EmailMessage` with the
    default policy builds, in a fifth of the time (that policy parses every header it is given:
    about 1 ms per e-mail, most of a reminder storm's cost). An address outside ASCII takes the
    default policy, which encodes it as well as RFC 2047 allows."""
    if not (email.to.isascii() and _address_is_ascii(email.sender)):
        return _to_mime_default_policy(email)
    msg = Message()
    for name, value in _BODY_HEADERS:
        msg[name] = value
    msg.set_payload(_quoted_printable(email.text))
    msg["From"] = _mailbox(email.sender)
    msg["To"] = email.to
    # non-ASCII is RFC 2047-encoded; ASCII is folded at 78 characters either way
    msg["Subject"] = Header(
        email.subject,
        "utf-8" if not email.subject.isascii() else "us-ascii",
        header_name="Subject",
    )
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = email.message_id
    return msg


def mime_bytes(email: Email) -> bytes:
    """`bytes(to_mime(email))`, written directly when every header is ASCII and fits on its line
    (the common case: the generator's folding costs more than everything else notify does per
    e-mail); otherwise through `to_mime`, whose folding and encoding it does not repeat."""
    if not (email.to.isascii() and _address_is_ascii(email.sender)):
        return bytes(to_mime(email))
    headers = (
        *_BODY_HEADERS,
        ("From", _mailbox(email.sender)),
        ("To", email.to),
        ("Subject", email.subject),
        ("Date", formatdate(usegmt=True)),
        ("Message-ID", email.message_id),
    )
    if not all(_fits(name, value) for name, value in headers):
        return bytes(to_mime(email))
    lines = [f"{name}: {value}" for name, value in headers]
    return ("\n".join(lines) + "\n\n" + _quoted_printable(email.text)).encode("ascii")


def _quoted_printable(text: str) -> str:
    """The body, UTF-8 then quoted-printable (RFC 2045: lines of at most 76 characters, line
    breaks kept), by the C encoder; this keeps the message 7-bit clean, so no relay needs
    8BITMIME for "Äpfel"."""
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii")


@functools.lru_cache(maxsize=16)  # one sender per deployment: parsed once, not per e-mail
def _address_is_ascii(sender: str) -> bool:
    return parseaddr(sender)[1].isascii()


@functools.lru_cache(maxsize=16)
def _mailbox(sender: str) -> str:
    """`Name <addr>` with a non-ASCII name as RFC 2047 encoded-words of at most 75 characters."""
    name, address = parseaddr(sender)
    if name.isascii():
        return formataddr((name, address))
    return f"{Header(name, 'utf-8', header_name='From').encode(maxlinelen=78)} <{address}>"


def _fits(name: str, value: str) -> bool:
    return value.isascii() and len(name) + 2 + len(value) <= 78 and not _NEEDS_ENCODING(value)


def _to_mime_default_policy(email: Email) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = email.sender
    msg["To"] = email.to
    msg["Subject"] = email.subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = email.message_id
    for name, value in _BODY_HEADERS:  # the body as to_mime writes it
        msg[name] = value
    msg.set_payload(_quoted_printable(email.text))
    return msg


_NEEDS_ENCODING = re.compile(r"[\x00-\x1f\x7f]").search  # control characters, line breaks
_BODY_HEADERS = (
    ("Content-Type", 'text/plain; charset="utf-8"'),
    ("MIME-Version", "1.0"),
    ("Content-Transfer-Encoding", "quoted-printable"),
)


def backend_from_config() -> EmailBackend:
    """The backend DUEFLOW_EMAIL_BACKEND names, built from the environment (see dueflow.config)."""
    name = config.email_backend()
    # One network timeout for every remote backend (DUEFLOW_EMAIL_TIMEOUT).
    timeout = config.email_timeout()
    if name == "outbox":
        from dueflow.adapters.email.outbox import OutboxBackend

        return OutboxBackend(config.outbox_dir())
    if name == "smtp":
        url = config.smtp_url()
        if not url:
            raise ConfigError("DUEFLOW_EMAIL_BACKEND=smtp needs SMTP_URL (smtp://host:port, ...)")
        from dueflow.adapters.email.smtp import SmtpBackend

        return SmtpBackend(url, timeout=timeout)
    if name == "sendgrid":
        api_key = config.sendgrid_api_key()
        if not api_key:
            raise ConfigError("DUEFLOW_EMAIL_BACKEND=sendgrid needs SENDGRID_API_KEY")
        from dueflow.adapters.email.sendgrid import SendGridBackend

        return SendGridBackend(api_key, host=config.sendgrid_host(), timeout=timeout)
    if name == "dapr":
        from dueflow.adapters.email.dapr import DaprBackend

        return DaprBackend(config.dapr_http_port(), config.dapr_email_binding(), timeout=timeout)
    raise ConfigError(
        f"DUEFLOW_EMAIL_BACKEND must be one of outbox, smtp, sendgrid, dapr; got {name!r}"
    )
