"""The `smtp` backend: stdlib smtplib, configured by SMTP_URL; one connection per e-mail, or per
batch (`send_many`: a reminders.due batch of 100 is one TLS handshake and one login, not 100).

    smtp://host[:port]                           plain (port 25)
    smtp://user:pass@host:587?starttls=true      STARTTLS, then AUTH
    smtps://user:pass@host[:465]                 implicit TLS
    ...&verify=false                             accept any certificate (self-signed dev servers)

User and password are URL-decoded, so "p%40ss" is "p@ss". Errors are classified by who can fix
them: a 5xx reply to *this message* (sender, recipient, content) is permanent; anything about the
server or the connection is transient.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from email.utils import parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from dueflow.adapters.email import (
    Email,
    EmailError,
    PermanentEmailError,
    TransientEmailError,
    to_mime,
)
from dueflow.config import ConfigError

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _flag(query: dict[str, list[str]], name: str, default: bool) -> bool:
    raw = query.get(name, [""])[-1].lower()
    if raw in _TRUE or raw in _FALSE:
        return raw in _TRUE
    if raw == "":
        return default
    raise ConfigError(f"SMTP_URL: {name} must be true or false, got {raw!r}")


class SmtpBackend:
    name = "smtp"

    def __init__(self, url: str, *, timeout: float = 10.0):
        # Never put `url` into a message: it holds the password.
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ConfigError("SMTP_URL must start with smtp:// or smtps://")
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError("SMTP_URL has an invalid port") from exc
        if not parts.hostname:
            raise ConfigError("SMTP_URL has no host")
        query = parse_qs(parts.query)
        self.host = parts.hostname
        self.implicit_tls = parts.scheme == "smtps"
        self.port = port or (465 if self.implicit_tls else 25)
        self.starttls = _flag(query, "starttls", False) and not self.implicit_tls
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else ""
        self.timeout = timeout
        self.tls_context = ssl.create_default_context()
        if not _flag(query, "verify", True):
            self.tls_context.check_hostname = False
            self.tls_context.verify_mode = ssl.CERT_NONE

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.tls_context
            )
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def send(self, email: Email) -> None:
        smtp = self._guarded(email, self._open)
        self._guarded(email, self._send_one, smtp, email, close=True)

    def send_many(
        self, emails: list[Email], on_accepted: Callable[[Email], None] | None = None
    ) -> list[EmailError | None]:
        """Each e-mail's outcome, in order, over one connection (see notify.send_all): a
        transient failure of one message (a 4xx for its recipient) does not stop the others,
        one of the connection or the server (no answer to NOOP) stops the batch there.
        `on_accepted(email)` runs as soon as the server accepted an e-mail, before the next
        is sent (notify records it there, so a crash re-sends at most the one in flight)."""
        results: list[EmailError | None] = []
        smtp = None
        try:
            for email in emails:
                try:
                    if smtp is None:
                        smtp = self._guarded(email, self._open)
                    self._guarded(email, self._send_one, smtp, email, close=False)
                    if on_accepted is not None:
                        on_accepted(email)
                except PermanentEmailError as exc:
                    results.append(exc)
                    continue
                except TransientEmailError as exc:
                    results.append(exc)
                    if smtp is not None and _still_talking(smtp):
                        continue  # this message's trouble (a 4xx for its recipient): go on
                    break
                results.append(None)
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        return results

    def _open(self) -> smtplib.SMTP:
        smtp = self._connect()
        try:
            if self.starttls:
                smtp.starttls(context=self.tls_context)
            if self.user:
                smtp.login(self.user, self.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send_one(self, smtp: smtplib.SMTP, email: Email, *, close: bool) -> None:
        sender = parseaddr(email.sender)[1] or email.sender
        try:
            refused = smtp.send_message(to_mime(email), from_addr=sender, to_addrs=[email.to])
        finally:
            if close:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        if refused:  # only possible with several recipients; kept for safety
            raise smtplib.SMTPRecipientsRefused(refused)

    def _guarded(self, email: Email, action, *args, **kwargs):
        """Runs `action`, turning smtplib's errors into the two kinds notify acts on."""
        where = f"SMTP {self.host}:{self.port}"
        try:
            return action(*args, **kwargs)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            _raise_for(min(codes), f"{where} refused {email.to}: {exc.recipients}", exc)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            if exc.smtp_code == 530:  # "authentication required": SMTP_URL lacks credentials
                raise TransientEmailError(f"{where} requires authentication: {exc}") from exc
            _raise_for(exc.smtp_code, f"{where} rejected the message: {exc}", exc)
        except smtplib.SMTPAuthenticationError as exc:
            # Transient on purpose: wrong credentials are an operator's problem, not the
            # reminder's. Once SMTP_URL is fixed, the broker's next retry delivers the e-mail;
            # marking reminders failed would lose every reminder sent until the fix.
            raise TransientEmailError(f"{where} authentication failed: {exc}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Disconnects, refused connections, timeouts, TLS and certificate errors, a server
            # without STARTTLS/AUTH, 4xx/5xx greetings: the server or config, not this message.
            # (SMTPException is itself an OSError; both are named for the reader.)
            raise TransientEmailError(f"{where}: {type(exc).__name__}: {exc}") from exc


def _still_talking(smtp: smtplib.SMTP) -> bool:
    try:
        return smtp.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def _raise_for(code: int, text: str, exc: Exception) -> None:
    if 500 <= code < 600:
        raise PermanentEmailError(text) from exc
    raise TransientEmailError(text) from exc  # 4xx: "try again later"
