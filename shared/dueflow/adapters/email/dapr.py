"""The `dapr` backend: the Dapr SendGrid output binding (bindings.twilio.sendgrid) via the sidecar.

    POST http://127.0.0.1:{DAPR_HTTP_PORT}/v1.0/bindings/{binding}
    {"operation": "create", "data": <body>, "metadata": {"emailTo", "subject", "emailFrom",
                                                         "emailFromName" (only if named)}}

Metadata names are those of the Dapr docs for the binding. Two things the binding does that
matter here (checked in dapr/components-contrib, bindings/twilio/sendgrid/sendgrid.go):
- it sends `data` as text/html, so the plain text is HTML-escaped and its line breaks become
  <br>; otherwise "a < b" would vanish and every reminder would be one line;
- it cannot set headers, so the Message-ID is lost: receivers cannot deduplicate on this path.
Dapr answers 500 for any failure inside the binding, including SendGrid rejecting the e-mail,
so those are retried (transient) like an outage; only Dapr's own 4xx are permanent.
"""

from __future__ import annotations

import html
from email.utils import parseaddr

import requests

from dueflow.adapters.email import Email, PermanentEmailError, TransientEmailError


def html_body(text: str) -> str:
    """Plain text as the HTML the binding sends: escaped, line breaks kept."""
    return html.escape(text).replace("\r\n", "\n").replace("\n", "<br>\n")


class DaprBackend:
    name = "dapr"

    def __init__(self, port: int, binding: str, *, timeout: float = 10.0):
        self.url = f"http://127.0.0.1:{port}/v1.0/bindings/{binding}"
        self.timeout = timeout
        self.session = requests.Session()

    def send(self, email: Email) -> None:
        name, address = parseaddr(email.sender)
        metadata = {"emailTo": email.to, "subject": email.subject, "emailFrom": address}
        if name:
            metadata["emailFromName"] = name
        payload = {"operation": "create", "data": html_body(email.text), "metadata": metadata}
        try:
            response = self.session.post(self.url, json=payload, timeout=self.timeout)
        except requests.RequestException as exc:  # sidecar not up (yet), timeout, reset
            raise TransientEmailError(f"Dapr sidecar: {type(exc).__name__}: {exc}") from exc
        if 200 <= response.status_code < 300:
            return
        detail = f"Dapr binding answered {response.status_code}: {response.text[:300]}"
        if 400 <= response.status_code < 500:
            raise PermanentEmailError(detail)
        raise TransientEmailError(detail)
