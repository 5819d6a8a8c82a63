"""The `sendgrid` backend: the official SDK, `POST {host}/v3/mail/send`, success is 202.

SendGrid's v3 Mail Send docs reserve these headers: x-sg-id, x-sg-eid, received, dkim-signature,
Content-Type, Content-Transfer-Encoding, To, From, Subject, Reply-To, CC, BCC. Message-ID is not
among them, so the reminder's stable Message-ID goes in `headers` and receivers can deduplicate
a redelivered reminder just as with the SMTP backend.

(This module is named like the SDK; absolute imports make `import sendgrid` the SDK.)
"""

from __future__ import annotations

import http.client
from email.utils import parseaddr

import sendgrid
from python_http_client.exceptions import HTTPError
from sendgrid.helpers.mail import From, Header, Mail, To

from dueflow.adapters.email import Email, PermanentEmailError, TransientEmailError


class SendGridBackend:
    name = "sendgrid"

    def __init__(
        self, api_key: str, *, host: str = "https://api.sendgrid.com", timeout: float = 10
    ):
        self.client = sendgrid.SendGridAPIClient(api_key=api_key, host=host)
        # The SDK has no timeout argument; its HTTP client (python_http_client) passes this one
        # to every request it builds. Without it, a hung connection would block forever.
        self.client.client.timeout = timeout

    def send(self, email: Email) -> None:
        name, address = parseaddr(email.sender)
        mail = Mail(
            from_email=From(address or email.sender, name or None),
            to_emails=To(email.to),
            subject=email.subject,
            plain_text_content=email.text,
        )
        mail.header = Header("Message-ID", email.message_id)
        try:
            response = self.client.send(mail)
        except HTTPError as exc:
            status = exc.status_code
            detail = f"SendGrid answered {status}: {_text(exc.body)}"
            if status == 429 or status >= 500:  # rate limited or SendGrid trouble: retry
                raise TransientEmailError(detail) from exc
            if status in (401, 403):
                # Transient on purpose: a revoked key or missing "Mail Send" permission is fixed
                # by an operator, after which the broker's retries deliver every waiting reminder.
                raise TransientEmailError(detail) from exc
            raise PermanentEmailError(detail) from exc  # 400, 413, ...: this request is invalid
        except (OSError, http.client.HTTPException) as exc:
            # URLError, timeouts, refused or reset connections are all OSError; a garbled
            # status line is an HTTPException.
            raise TransientEmailError(f"SendGrid unreachable: {type(exc).__name__}: {exc}") from exc
        # 202 is the documented answer; 200 comes back in sandbox mode. Both mean accepted.
        if not 200 <= response.status_code < 300:
            raise TransientEmailError(f"SendGrid answered {response.status_code}")


def _text(body: bytes | str | None) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return (body or "")[:300]
