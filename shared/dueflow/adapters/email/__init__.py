"""Sending reminder e-mails: one interface, four backends chosen by DUEFLOW_EMAIL_BACKEND.

Backends raise exactly two kinds of error, because the caller can do exactly two things:
`TransientEmailError` (answer 5xx so the broker redelivers later) and `PermanentEmailError` (mark
the reminder failed). Anything an operator can fix without changing the message (credentials,
TLS, a server that is down) is transient: the retry after the fix then delivers it.

Backend modules are imported only by `backend_from_config`, so a cold start pays for the one it
uses (the SendGrid SDK alone takes tens of milliseconds to import).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
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


def to_mime(email: Email) -> EmailMessage:
    """The RFC 5322 message that the outbox writes and SMTP sends (one builder, one format)."""
    msg = EmailMessage()
    msg["From"] = email.sender
    msg["To"] = email.to
    msg["Subject"] = email.subject  # non-ASCII is RFC 2047-encoded by the default policy
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = email.message_id
    # Quoted-printable keeps the message 7-bit clean, so no relay needs 8BITMIME for "Äpfel".
    msg.set_content(email.text, charset="utf-8", cte="quoted-printable")
    return msg


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
