"""The four e-mail backends against real servers on 127.0.0.1 (nothing mocked in-process).

- eml: real files in tmp_path.
- smtp: aiosmtpd's Controller, a real SMTP server in a thread (plain, STARTTLS + AUTH with a
  self-signed certificate made with `cryptography`, implicit TLS).
- sendgrid and dapr: a real HTTP server (tests/support/http.py) standing in for api.sendgrid.com
  and for the Dapr sidecar; it records each request and answers the status the test sets, so the
  assertions are on the exact HTTP request the real services document.

Backends are built by ``bootstrap.email_backend`` from the environment, as in production.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import grpc
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from dueflow.adapters.email import eml as eml_module
from dueflow.adapters.email.dapr import DaprBackend
from dueflow.adapters.email.eml import EmlBackend
from dueflow.adapters.email.sendgrid import SendGridBackend
from dueflow.adapters.email.smtp import SmtpBackend
from dueflow.bootstrap import email_backend as backend_from_config
from dueflow.config import ConfigError
from dueflow.service.ports import (
    Email,
    EmailError,
    PermanentEmailError,
    TransientEmailError,
)
from tests.support.dapr_sidecar import FakeSidecar
from tests.support.http import FakeHTTP, free_port
from tests.support.smtp import Collector, parse, smtp_servers

TO = "alice@example.com"
FROM_ADDR = "reminders@dueflow.test"
SUBJECT = "Erinnerung: Äpfel kaufen"
TEXT = "Äpfel & Birnen kaufen\nFällig: 1. Dezember 2026, 09:00 <Berlin>\n"
MID = "<r-6f1c0b2e-20261201T080000Z@dueflow>"
KEY = "r-6f1c0b2e-20261201T080000Z"
MAIL = Email(
    to=TO, sender=f"dueflow <{FROM_ADDR}>", subject=SUBJECT, text=TEXT, message_id=MID, key=KEY
)
USER, PASSWORD = "dueflow", "s3cr@t:/x"  # needs URL-encoding: s3cr%40t%3A%2Fx
PASSWORD_IN_URL = "s3cr%40t%3A%2Fx"


@pytest.fixture(autouse=True)
def _short_timeouts(monkeypatch):
    monkeypatch.setenv("DUEFLOW_EMAIL_TIMEOUT", "5")


def assert_is_the_reminder(msg: email.message.EmailMessage) -> None:
    assert msg["Subject"] == SUBJECT
    assert msg["Message-ID"] == MID
    assert msg["To"] == TO
    assert msg["From"].addresses[0].addr_spec == FROM_ADDR
    assert msg["From"].addresses[0].display_name == "dueflow"
    assert parsedate_to_datetime(msg["Date"]).tzinfo is not None
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg.get_content().replace("\r\n", "\n") == TEXT  # SMTP puts CRLF on the wire


# -- eml ---------------------------------------------------------------------------------------


def eml(monkeypatch, directory: Path) -> EmlBackend:
    monkeypatch.setenv("DUEFLOW_EMAIL_BACKEND", "eml")
    monkeypatch.setenv("DUEFLOW_EML_DIR", str(directory))
    return backend_from_config()


def test_eml_writes_a_parseable_rfc5322_message(monkeypatch, tmp_path):
    directory = tmp_path / "does" / "not" / "exist" / "yet"
    eml(monkeypatch, directory).send(MAIL)

    assert [p.name for p in directory.iterdir()] == [f"{KEY}.eml"]  # no temporary file left
    assert_is_the_reminder(parse((directory / f"{KEY}.eml").read_bytes()))


def test_the_deprecated_names_outbox_and_dueflow_outbox_dir_still_write_eml_files(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("DUEFLOW_EMAIL_BACKEND", "outbox")
    monkeypatch.delenv("DUEFLOW_EML_DIR", raising=False)
    monkeypatch.setenv("DUEFLOW_OUTBOX_DIR", str(tmp_path / "old"))
    backend = backend_from_config()
    backend.send(MAIL)
    assert (type(backend), backend.name) == (EmlBackend, "eml")
    assert_is_the_reminder(parse((tmp_path / "old" / f"{KEY}.eml").read_bytes()))


def test_eml_same_key_twice_leaves_one_unchanged_file(monkeypatch, tmp_path):
    backend = eml(monkeypatch, tmp_path)
    backend.send(MAIL)
    path = tmp_path / f"{KEY}.eml"
    before = (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_ino)

    backend.send(MAIL)

    assert list(tmp_path.iterdir()) == [path]
    assert (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_ino) == before


def test_eml_unwritable_directory_is_transient(monkeypatch, tmp_path):
    blocker = tmp_path / "a-regular-file"
    blocker.write_text("not a directory")
    with pytest.raises(TransientEmailError):
        eml(monkeypatch, blocker / "eml").send(MAIL)


def test_eml_refuses_a_key_that_is_not_a_file_name(monkeypatch, tmp_path):
    backend = eml(monkeypatch, tmp_path / "box")
    for key in ("../escape", ".hidden", "a/b", ""):
        with pytest.raises(PermanentEmailError):
            backend.send(Email(TO, FROM_ADDR, SUBJECT, TEXT, MID, key))
    assert not (tmp_path / "escape.eml").exists()


# -- smtp ----------------------------------------------------------------------------------------


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    # handled=False: aiosmtpd then answers 535 itself (handled=True would leave the client hanging)
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@pytest.fixture
def smtp_server() -> Iterator:
    """Starts aiosmtpd controllers on 127.0.0.1 (a free port unless given); stops them all."""
    with smtp_servers() as start:
        yield start


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1/localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


def smtp(monkeypatch, url: str) -> SmtpBackend:
    monkeypatch.setenv("DUEFLOW_EMAIL_BACKEND", "smtp")
    monkeypatch.setenv("SMTP_URL", url)
    return backend_from_config()


def test_smtp_delivers_the_message(monkeypatch, smtp_server):
    handler = Collector()
    port = smtp_server(handler)

    smtp(monkeypatch, f"smtp://127.0.0.1:{port}").send(MAIL)

    [got] = handler.delivered
    assert got.mail_from == FROM_ADDR
    assert got.rcpt_tos == [TO]
    assert_is_the_reminder(got.message)


def test_smtp_server_down_then_back(monkeypatch, smtp_server):
    port = free_port()
    backend = smtp(monkeypatch, f"smtp://127.0.0.1:{port}")
    with pytest.raises(TransientEmailError):
        backend.send(MAIL)

    handler = Collector()
    smtp_server(handler, port=port)
    backend.send(MAIL)

    assert [d.message["Message-ID"] for d in handler.delivered] == [MID]


@pytest.mark.parametrize(
    ("reply", "error"),
    [("550 No such user", PermanentEmailError), ("451 Try again later", TransientEmailError)],
)
def test_smtp_refused_recipient_is_classified_by_reply_code(monkeypatch, smtp_server, reply, error):
    handler = Collector(rcpt_reply=reply)
    port = smtp_server(handler)
    with pytest.raises(error, match=reply.split()[0]):
        smtp(monkeypatch, f"smtp://127.0.0.1:{port}").send(MAIL)
    assert handler.delivered == []


def start_starttls_auth_server(smtp_server, server_tls, handler: Collector) -> int:
    return smtp_server(
        handler,
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )


def test_smtp_starttls_and_auth(monkeypatch, smtp_server, server_tls):
    handler = Collector()
    port = start_starttls_auth_server(smtp_server, server_tls, handler)
    url = f"smtp://{USER}:{PASSWORD_IN_URL}@127.0.0.1:{port}?starttls=true&verify=false"

    smtp(monkeypatch, url).send(MAIL)

    [got] = handler.delivered
    assert (got.authenticated, got.login) == (True, USER.encode())
    assert_is_the_reminder(got.message)


def test_smtp_wrong_password_is_transient(monkeypatch, smtp_server, server_tls):
    """Documented choice: an operator fixes SMTP_URL, then the broker's retries deliver."""
    handler = Collector()
    port = start_starttls_auth_server(smtp_server, server_tls, handler)
    url = f"smtp://{USER}:wrong@127.0.0.1:{port}?starttls=true&verify=false"

    with pytest.raises(TransientEmailError, match="authentication failed"):
        smtp(monkeypatch, url).send(MAIL)
    assert handler.delivered == []


def test_smtp_verifies_certificates_by_default(monkeypatch, smtp_server, server_tls):
    handler = Collector()
    port = start_starttls_auth_server(smtp_server, server_tls, handler)
    url = f"smtp://{USER}:{PASSWORD_IN_URL}@127.0.0.1:{port}?starttls=true"

    with pytest.raises(TransientEmailError, match="CERTIFICATE_VERIFY_FAILED"):
        smtp(monkeypatch, url).send(MAIL)
    assert handler.delivered == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_smtps_implicit_tls_and_auth(monkeypatch, smtp_server, server_tls):
    handler = Collector()
    # aiosmtpd only counts STARTTLS as TLS for AUTH; this connection is TLS from the first byte.
    port = smtp_server(
        handler,
        ssl_context=server_tls,
        auth_required=True,
        auth_require_tls=False,
        authenticator=authenticator,
    )

    smtp(monkeypatch, f"smtps://{USER}:{PASSWORD_IN_URL}@127.0.0.1:{port}?verify=false").send(MAIL)

    [got] = handler.delivered
    assert (got.authenticated, got.login) == (True, USER.encode())
    assert got.message["Message-ID"] == MID


def test_smtp_url_defaults_and_errors():
    assert SmtpBackend("smtp://mail.example.com").port == 25
    assert SmtpBackend("smtps://u:p@mail.example.com").port == 465
    tls = SmtpBackend("smtp://u:p%2F@mail.example.com:587?starttls=true")
    assert (tls.port, tls.starttls, tls.user, tls.password) == (587, True, "u", "p/")
    for bad in ("http://mail.example.com", "smtp://", "smtp://h:99999", "smtp://h?verify=maybe"):
        with pytest.raises(ConfigError):
            SmtpBackend(bad)


# -- fake HTTP services (SendGrid API, Dapr sidecar) ---------------------------------------------


@pytest.fixture
def fake_http() -> Iterator[FakeHTTP]:
    fake = FakeHTTP()
    yield fake
    fake.close()


# -- sendgrid ------------------------------------------------------------------------------------

SG_KEY = "SG.test-key.abc"


def sendgrid_backend(monkeypatch, port: int) -> SendGridBackend:
    monkeypatch.setenv("DUEFLOW_EMAIL_BACKEND", "sendgrid")
    monkeypatch.setenv("SENDGRID_API_KEY", SG_KEY)
    monkeypatch.setenv("DUEFLOW_SENDGRID_HOST", f"http://127.0.0.1:{port}")
    return backend_from_config()


def test_sendgrid_sends_the_documented_request(monkeypatch, fake_http):
    fake_http.answer(202)

    sendgrid_backend(monkeypatch, fake_http.port).send(MAIL)

    [req] = fake_http.requests
    assert (req.method, req.path) == ("POST", "/v3/mail/send")
    assert req.headers["Authorization"] == f"Bearer {SG_KEY}"
    assert req.headers["Content-Type"] == "application/json"
    body = req.json()
    assert body["personalizations"][0]["to"][0]["email"] == TO
    assert body["from"] == {"email": FROM_ADDR, "name": "dueflow"}
    assert body["subject"] == SUBJECT
    assert body["content"] == [{"type": "text/plain", "value": TEXT}]
    # Message-ID is not a reserved header in SendGrid's v3 Mail Send API, so it is sent as is.
    assert body == {
        "from": {"email": FROM_ADDR, "name": "dueflow"},
        "subject": SUBJECT,
        "personalizations": [{"to": [{"email": TO}]}],
        "content": [{"type": "text/plain", "value": TEXT}],
        "headers": {"Message-ID": MID},
    }


def test_sendgrid_sender_without_name(monkeypatch, fake_http):
    fake_http.answer(202)
    sendgrid_backend(monkeypatch, fake_http.port).send(
        Email(TO, FROM_ADDR, SUBJECT, TEXT, MID, KEY)
    )
    assert fake_http.requests[0].json()["from"] == {"email": FROM_ADDR}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, PermanentEmailError),
        (413, PermanentEmailError),
        (401, TransientEmailError),  # operator fixes the key, retries then succeed
        (403, TransientEmailError),
        (429, TransientEmailError),
        (500, TransientEmailError),
        (503, TransientEmailError),
    ],
)
def test_sendgrid_errors_are_classified(monkeypatch, fake_http, status, error):
    fake_http.answer(status, {"errors": [{"message": f"status {status}", "field": None}]})
    with pytest.raises(error, match=str(status)):
        sendgrid_backend(monkeypatch, fake_http.port).send(MAIL)


def test_sendgrid_unreachable_is_transient(monkeypatch):
    with pytest.raises(TransientEmailError, match="unreachable"):
        sendgrid_backend(monkeypatch, free_port()).send(MAIL)


# -- dapr ----------------------------------------------------------------------------------------


def dapr_backend(monkeypatch, sidecar: FakeSidecar) -> DaprBackend:
    monkeypatch.setenv("DUEFLOW_EMAIL_BACKEND", "dapr")
    monkeypatch.setenv("DAPR_GRPC_PORT", str(sidecar.grpc_port))
    monkeypatch.setenv("DUEFLOW_DAPR_EMAIL_BINDING", "reminder-mail")
    monkeypatch.setenv("DUEFLOW_EMAIL_TIMEOUT", "2")
    return backend_from_config()


def test_dapr_invokes_the_sendgrid_binding_through_the_sdk(monkeypatch, sidecar):
    dapr_backend(monkeypatch, sidecar).send(MAIL)

    [req] = sidecar.rpcs("InvokeBinding")
    assert (req.name, req.operation) == ("reminder-mail", "create")
    # The binding sends `data` as text/html: the text arrives escaped, its line breaks kept.
    assert req.data.decode() == (
        "Äpfel &amp; Birnen kaufen<br>\nFällig: 1. Dezember 2026, 09:00 &lt;Berlin&gt;<br>\n"
    )
    assert dict(req.metadata) == {
        "emailTo": TO,
        "subject": SUBJECT,
        "emailFrom": FROM_ADDR,
        "emailFromName": "dueflow",
    }


def test_dapr_sender_without_name_sends_no_from_name(monkeypatch, sidecar):
    dapr_backend(monkeypatch, sidecar).send(Email(TO, FROM_ADDR, SUBJECT, "x", MID, KEY))
    assert dict(sidecar.rpcs("InvokeBinding")[0].metadata) == {
        "emailTo": TO,
        "subject": SUBJECT,
        "emailFrom": FROM_ADDR,
    }


@pytest.mark.parametrize(
    ("code", "error"),
    [
        # Dapr answers INTERNAL for any failure inside the binding (SendGrid's too): retried
        (grpc.StatusCode.INTERNAL, TransientEmailError),
        (grpc.StatusCode.UNAVAILABLE, TransientEmailError),
        # the sidecar's own refusals: no binding of that name, a bad request
        (grpc.StatusCode.NOT_FOUND, PermanentEmailError),
        (grpc.StatusCode.INVALID_ARGUMENT, PermanentEmailError),
    ],
)
def test_dapr_errors_are_classified(monkeypatch, sidecar, code, error):
    sidecar.fail_with = code
    with pytest.raises(error, match=code.name):
        dapr_backend(monkeypatch, sidecar).send(MAIL)


def test_dapr_sidecar_gone_is_transient(monkeypatch, sidecar):
    backend = dapr_backend(monkeypatch, sidecar)
    backend.send(MAIL)  # connected
    sidecar.stop()
    with pytest.raises(TransientEmailError):
        backend.send(MAIL)


# -- backend_from_config -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "env", "cls"),
    [
        ("eml", {}, EmlBackend),
        ("smtp", {"SMTP_URL": "smtp://127.0.0.1:2525"}, SmtpBackend),
        ("SendGrid", {"SENDGRID_API_KEY": SG_KEY}, SendGridBackend),
        ("dapr", {}, DaprBackend),
    ],
)
def test_backend_from_config_builds_each_backend(monkeypatch, name, env, cls):
    monkeypatch.setenv("DUEFLOW_EMAIL_BACKEND", name)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    backend = backend_from_config()
    assert type(backend) is cls
    assert backend.name == name.lower()


def test_backend_from_config_defaults_to_eml(monkeypatch):
    monkeypatch.delenv("DUEFLOW_EMAIL_BACKEND", raising=False)
    assert backend_from_config().name == "eml"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DUEFLOW_EMAIL_BACKEND": "pigeon"}, "pigeon"),
        ({"DUEFLOW_EMAIL_BACKEND": "smtp"}, "SMTP_URL"),
        ({"DUEFLOW_EMAIL_BACKEND": "smtp", "SMTP_URL": "http://x"}, "smtp://"),
        ({"DUEFLOW_EMAIL_BACKEND": "sendgrid"}, "SENDGRID_API_KEY"),
    ],
)
def test_backend_from_config_rejects_bad_settings(monkeypatch, env, message):
    monkeypatch.delenv("SMTP_URL", raising=False)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message):
        backend_from_config()


def test_errors_share_a_base_class():
    assert issubclass(TransientEmailError, EmailError)
    assert issubclass(PermanentEmailError, EmailError)


def test_only_the_chosen_backend_is_imported():
    """Cold start: building the eml backend must not import the SendGrid SDK."""
    code = (
        "import sys; from dueflow.bootstrap import email_backend as backend_from_config; "
        "backend_from_config(); "
        "heavy = ('sendgrid', 'python_http_client', 'smtplib'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    env = {**os.environ, "DUEFLOW_EMAIL_BACKEND": "eml"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# -- batches: send_many --------------------------------------------------------------------------


def batch(n: int, **overrides) -> list[Email]:
    """`n` distinct reminders (their own key, Message-ID and recipient), MAIL's text and subject."""
    return [
        Email(
            to=f"user{i}@example.com",
            sender=MAIL.sender,
            subject=f"{SUBJECT} #{i}",
            text=TEXT,
            message_id=f"<r-{i}-20261201T080000Z@dueflow>",
            key=f"r-{i}-20261201T080000Z",
            **overrides,
        )
        for i in range(n)
    ]


def test_eml_send_many_writes_every_file_and_no_temporary_one(monkeypatch, tmp_path):
    directory = tmp_path / "new" / "box"
    mails = batch(5)

    results = eml(monkeypatch, directory).send_many(mails)

    assert results == [None] * 5
    assert sorted(p.name for p in directory.iterdir()) == sorted(f"{m.key}.eml" for m in mails)
    for m in mails:
        msg = parse((directory / f"{m.key}.eml").read_bytes())
        assert (msg["Message-ID"], msg["To"], msg["Subject"]) == (m.message_id, m.to, m.subject)
        assert msg.get_content() == TEXT
    assert eml(monkeypatch, directory).send_many([]) == []


def test_eml_send_many_leaves_existing_files_as_they_are(monkeypatch, tmp_path):
    backend = eml(monkeypatch, tmp_path)
    first, second, third = batch(3)
    backend.send(second)
    path = tmp_path / f"{second.key}.eml"
    before = (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_ino)
    changed = Email(**{**vars(second), "subject": "a different subject"})

    assert backend.send_many([first, changed, third, first]) == [None] * 4

    assert (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_ino) == before
    assert parse(path.read_bytes())["Subject"] == second.subject
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{m.key}.eml" for m in (first, second, third)
    )


def test_eml_send_many_refuses_only_the_unsafe_key(monkeypatch, tmp_path):
    box = tmp_path / "box"
    good = batch(4)
    bad = [Email(**{**vars(good[1]), "key": "../escape"}), Email(**{**vars(good[3]), "key": ".x"})]

    results = eml(monkeypatch, box).send_many([good[0], bad[0], good[2], bad[1]])

    assert results[0] is None and results[2] is None
    assert isinstance(results[1], PermanentEmailError)
    assert isinstance(results[3], PermanentEmailError)
    assert sorted(p.name for p in box.iterdir()) == [f"{good[0].key}.eml", f"{good[2].key}.eml"]
    assert not (tmp_path / "escape.eml").exists()


def test_eml_send_many_into_an_unwritable_directory_is_transient_for_each(monkeypatch, tmp_path):
    blocker = tmp_path / "a-regular-file"  # root ignores chmod: a file where a directory goes
    blocker.write_text("not a directory")

    results = eml(monkeypatch, blocker / "eml").send_many(batch(3))

    assert len(results) >= 1
    assert all(isinstance(r, TransientEmailError) for r in results), results
    assert blocker.read_text() == "not a directory"


def test_eml_send_many_failing_part_way_reports_no_unwritten_mail_as_sent(monkeypatch, tmp_path):
    mails = batch(4)
    mails[2] = Email(**{**vars(mails[2]), "key": "r-" + "x" * 300})  # a safe, too long name

    results = eml(monkeypatch, tmp_path).send_many(mails)

    written = {p.name for p in tmp_path.iterdir()}
    assert not any(p.startswith(".") for p in written)  # no temporary file left
    for mail, result in zip(mails, results, strict=False):
        if result is None:
            assert f"{mail.key}.eml" in written, f"{mail.key} reported sent but not written"
    assert len(results) == 4 or isinstance(results[-1], TransientEmailError)


class SessionCollector(Collector):
    """A Collector that also notes each message's connection (the client's address and port),
    refuses the recipients in `refuse` with the reply given there, and hangs up on the ones in
    `hang_up` (as a server going away would)."""

    def __init__(self, refuse: dict[str, str] | None = None, hang_up: tuple[str, ...] = ()):
        super().__init__()
        self.refuse = refuse or {}
        self.hang_up = hang_up
        self.sessions: list[tuple] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.hang_up:
            server.transport.close()
            return "421 Closing connection"
        if address in self.refuse:
            return self.refuse[address]
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        self.sessions.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


def test_smtp_send_many_uses_one_connection_for_the_batch(monkeypatch, smtp_server):
    handler = SessionCollector()
    port = smtp_server(handler)
    mails = batch(5)

    results = smtp(monkeypatch, f"smtp://127.0.0.1:{port}").send_many(mails)

    assert results == [None] * 5
    assert len(set(handler.sessions)) == 1
    assert [d.message["Message-ID"] for d in handler.delivered] == [m.message_id for m in mails]
    assert [d.rcpt_tos for d in handler.delivered] == [[m.to] for m in mails]
    assert all(d.mail_from == FROM_ADDR for d in handler.delivered)
    assert handler.delivered[0].message.get_content().replace("\r\n", "\n") == TEXT


def test_smtp_send_many_refused_recipient_fails_only_that_message(monkeypatch, smtp_server):
    mails = batch(4)
    handler = SessionCollector(refuse={mails[1].to: "550 No such user"})
    port = smtp_server(handler)

    results = smtp(monkeypatch, f"smtp://127.0.0.1:{port}").send_many(mails)

    assert len(results) == 4
    assert isinstance(results[1], PermanentEmailError) and "550" in str(results[1])
    assert [results[i] for i in (0, 2, 3)] == [None, None, None]
    assert [d.rcpt_tos for d in handler.delivered] == [[mails[i].to] for i in (0, 2, 3)]
    assert len(set(handler.sessions)) == 1  # the refusal did not cost a new connection


def test_smtp_send_many_4xx_for_one_recipient_fails_only_that_message(monkeypatch, smtp_server):
    mails = batch(4)
    handler = SessionCollector(refuse={mails[1].to: "451 Try again later"})
    port = smtp_server(handler)

    results = smtp(monkeypatch, f"smtp://127.0.0.1:{port}").send_many(mails)

    assert len(results) == 4
    assert isinstance(results[1], TransientEmailError) and "451" in str(results[1])
    assert [results[i] for i in (0, 2, 3)] == [None, None, None]
    assert [d.rcpt_tos for d in handler.delivered] == [[mails[i].to] for i in (0, 2, 3)]
    assert len(set(handler.sessions)) == 1


def test_smtp_send_many_stops_when_the_server_goes_away(monkeypatch, smtp_server):
    mails = batch(4)
    handler = SessionCollector(hang_up=(mails[1].to,))
    port = smtp_server(handler)

    results = smtp(monkeypatch, f"smtp://127.0.0.1:{port}").send_many(mails)

    assert len(results) == 2  # the rest waits for the broker's retry
    assert results[0] is None and isinstance(results[1], TransientEmailError)
    assert [d.rcpt_tos for d in handler.delivered] == [[mails[0].to]]


def test_smtp_send_many_with_the_server_down(monkeypatch):
    backend = smtp(monkeypatch, f"smtp://127.0.0.1:{free_port()}")

    results = backend.send_many(batch(3))

    assert len(results) == 1 and isinstance(results[0], TransientEmailError)
    assert backend.send_many([]) == []  # nothing to send: no connection either


def test_smtp_send_many_starttls_and_auth_once(monkeypatch, smtp_server, server_tls):
    handler = SessionCollector()
    port = smtp_server(
        handler,
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    url = f"smtp://{USER}:{PASSWORD_IN_URL}@127.0.0.1:{port}?starttls=true&verify=false"

    results = smtp(monkeypatch, url).send_many(batch(3))

    assert results == [None] * 3
    assert len(set(handler.sessions)) == 1
    assert [(d.authenticated, d.login) for d in handler.delivered] == [(True, USER.encode())] * 3


def test_smtp_send_many_without_credentials_is_transient(monkeypatch, smtp_server, server_tls):
    handler = SessionCollector()
    port = start_starttls_auth_server(smtp_server, server_tls, handler)
    url = f"smtp://127.0.0.1:{port}?starttls=true&verify=false"  # no user, no password

    results = smtp(monkeypatch, url).send_many(batch(3))

    assert handler.delivered == []
    assert results and all(isinstance(r, TransientEmailError) for r in results), results


def test_eml_without_unnamed_files_writes_through_temporary_ones(monkeypatch, tmp_path):
    """Where O_TMPFILE is missing (not Linux, or a filesystem without it) the backend renames
    temporary files instead: the same files, none left over, existing ones left alone."""
    monkeypatch.setattr(eml_module, "_O_TMPFILE", 0)
    backend = eml(monkeypatch, tmp_path / "box")
    first, second, third = batch(3)
    backend.send(second)
    path = tmp_path / "box" / f"{second.key}.eml"
    before = (path.read_bytes(), path.stat().st_ino)
    changed = Email(**{**vars(second), "subject": "a different subject"})

    assert backend.send_many([first, changed, third]) == [None] * 3

    assert (path.read_bytes(), path.stat().st_ino) == before
    assert sorted(p.name for p in (tmp_path / "box").iterdir()) == sorted(
        f"{m.key}.eml" for m in (first, second, third)
    )
    assert parse((tmp_path / "box" / f"{third.key}.eml").read_bytes())["Subject"] == third.subject
