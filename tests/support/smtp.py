"""The SMTP peer of the tests: an aiosmtpd handler that keeps every message it accepts, run in
aiosmtpd's Controller (a real SMTP server in a thread) by `smtp_servers`."""

from __future__ import annotations

import email
import email.message
import email.policy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import LoginPassword

from tests.support.http import free_port


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage
    authenticated: bool
    login: bytes | None


class Collector:
    """An aiosmtpd handler keeping what it receives; `rcpt_reply` makes it refuse recipients."""

    def __init__(self, rcpt_reply: str | None = None):
        self.rcpt_reply = rcpt_reply
        self.delivered: list[Delivered] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        auth = session.auth_data
        self.delivered.append(
            Delivered(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                parse(envelope.content),
                session.authenticated,
                auth.login if isinstance(auth, LoginPassword) else None,
            )
        )
        return "250 Message accepted for delivery"


@contextmanager
def smtp_servers() -> Iterator[Callable[..., int]]:
    """`start(handler, port=None, **smtp_kwargs)` starts an aiosmtpd controller on 127.0.0.1 (a
    free port unless given) and returns its port; every one started stops on leaving."""
    started: list[Controller] = []

    def start(handler, port: int | None = None, **smtp_kwargs) -> int:
        port = port or free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **smtp_kwargs)
        controller.start()
        started.append(controller)
        return port

    try:
        yield start
    finally:
        for controller in started:
            controller.stop()
