"""Sending reminder e-mails: four backends chosen by DUEFLOW_EMAIL_BACKEND, behind the
`EmailBackend` port (`dueflow.service.ports`, where `Email` and its two errors live; re-exported
here for the backends and their tests), and the one MIME builder they share.

Backend modules are imported only by `build_backend`, so a cold start pays for the one it
uses (the SendGrid SDK alone takes tens of milliseconds to import).
"""

from __future__ import annotations

import binascii
import functools
import re
import time
from email.header import Header
from email.message import EmailMessage, Message
from email.utils import formataddr, formatdate, parseaddr

from dueflow.config import ConfigError, EmailSettings
from dueflow.service.ports import (
    Email,
    EmailBackend,
    EmailError,
    PermanentEmailError,
    TransientEmailError,
)

__all__ = [
    "Email",
    "EmailBackend",
    "EmailError",
    "PermanentEmailError",
    "TransientEmailError",
    "build_backend",
    "mime_bytes",
    "to_mime",
]


def to_mime(email: Email) -> Message:
    """The RFC 5322 message that the eml backend writes and SMTP sends (one builder, one format).

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
    msg["Date"] = _date_now()
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
        ("Date", _date_now()),
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


_DATE: tuple[int, str] = (0, "")


def _date_now() -> str:
    """The Date header for now (RFC 5322, whole seconds), formatted once per second: a batch of
    e-mails shares it (formatdate was a tenth of notify's Python time in a reminder storm)."""
    global _DATE
    second = int(time.time())
    if _DATE[0] != second:
        _DATE = (second, formatdate(second, usegmt=True))
    return _DATE[1]


def _fits(name: str, value: str) -> bool:
    return value.isascii() and len(name) + 2 + len(value) <= 78 and not _NEEDS_ENCODING(value)


def _to_mime_default_policy(email: Email) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = email.sender
    msg["To"] = email.to
    msg["Subject"] = email.subject
    msg["Date"] = _date_now()
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


def build_backend(settings: EmailSettings) -> EmailBackend:
    """The backend `settings.backend` names (see `dueflow.config.email`, which validated them);
    only its module is imported. The composition root (`dueflow.bootstrap`) calls this."""
    name, timeout = settings.backend, settings.timeout
    if name == "eml":
        from dueflow.adapters.email.eml import EmlBackend

        return EmlBackend(settings.eml_dir)
    if name == "smtp":
        from dueflow.adapters.email.smtp import SmtpBackend

        return SmtpBackend(settings.smtp_url or "", timeout=timeout)
    if name == "sendgrid":
        from dueflow.adapters.email.sendgrid import SendGridBackend

        return SendGridBackend(
            settings.sendgrid_api_key or "", host=settings.sendgrid_host, timeout=timeout
        )
    if name == "dapr":
        from dueflow.adapters.email.dapr import DaprBackend

        return DaprBackend(settings.dapr_grpc_port, settings.dapr_binding, timeout=timeout)
    raise ConfigError(f"no e-mail backend {name!r}")
