"""The `dapr` backend: the Dapr SendGrid output binding (bindings.twilio.sendgrid), invoked
through the Dapr Python SDK (gRPC InvokeBinding to the sidecar on DAPR_GRPC_PORT):

    binding {binding}, operation "create", data <html body>,
    metadata {"emailTo", "subject", "emailFrom", "emailFromName" (only if named)}

Metadata names are those of the Dapr docs for the binding. Two things the binding does that
matter here (checked in dapr/components-contrib, bindings/twilio/sendgrid/sendgrid.go):
- it sends `data` as text/html, so the plain text is HTML-escaped and its line breaks become
  <br>; otherwise "a < b" would vanish and every reminder would be one line;
- it cannot set headers, so the Message-ID is lost: receivers cannot deduplicate on this path.
Dapr answers INTERNAL for any failure inside the binding, including SendGrid rejecting the
e-mail, so those are retried (transient) like an outage; only the sidecar's own refusals
(`PERMANENT`: an unknown binding, a bad request) are permanent.
"""

from __future__ import annotations

import html
from email.utils import parseaddr

import grpc

from dueflow.adapters.dapr_sidecar import SidecarClient, rpc_code
from dueflow.adapters.email import Email, PermanentEmailError, TransientEmailError

#: The sidecar's answers that are about the request, not about the moment: never retried.
PERMANENT = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,  # no binding of that name (DUEFLOW_DAPR_EMAIL_BINDING)
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


def html_body(text: str) -> str:
    """Plain text as the HTML the binding sends: escaped, line breaks kept."""
    return html.escape(text).replace("\r\n", "\n").replace("\n", "<br>\n")


class DaprBackend:
    name = "dapr"

    def __init__(self, grpc_port: int, binding: str, *, timeout: float = 10.0):
        self.binding = binding
        self.sidecar = SidecarClient(grpc_port, timeout)

    def send(self, email: Email) -> None:
        name, address = parseaddr(email.sender)
        metadata = {"emailTo": email.to, "subject": email.subject, "emailFrom": address}
        if name:
            metadata["emailFromName"] = name
        try:
            self.sidecar.get().invoke_binding(
                self.binding, "create", html_body(email.text), binding_metadata=metadata
            )
        except grpc.RpcError as exc:
            code = rpc_code(exc)
            detail = f"Dapr binding {self.binding}: {code.name if code else 'error'}: {exc}"
            if code in PERMANENT:
                raise PermanentEmailError(detail) from exc
            raise TransientEmailError(detail) from exc
        except Exception as exc:  # the sidecar not up (the SDK's health wait timed out)
            raise TransientEmailError(f"Dapr sidecar: {type(exc).__name__}: {exc}") from exc
