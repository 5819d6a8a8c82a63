"""`mime_bytes` (the fast writer the eml backend uses) against `to_mime` (the message SMTP
sends): both must read back, with the stdlib's modern parser, as the same e-mail, 7-bit clean and
within RFC 5322's 78-character lines (76 in the quoted-printable body)."""

from __future__ import annotations

import email
import email.errors
import email.policy
import email.utils
import re
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dueflow.adapters.email import Email, mime_bytes, to_mime
from tests.support.hypothesis import examples

SENDER = "dueflow <reminders@dueflow.test>"
BASE = Email(
    to="alice@example.com",
    sender=SENDER,
    subject="Reminder: Write report",
    text="Write report\nDue: 1 December 2026, 09:00 (Europe/Berlin)\n",
    message_id="<r-6f1c0b2e-20261201T080000Z@dueflow>",
    key="r-6f1c0b2e-20261201T080000Z",
)
LONG_LINE = "word " * 40 + "x" * 120  # 320 characters: soft line breaks in the body
TEXTS = {
    "plain": BASE.text,
    "non-ascii": "Äpfel & Birnen kaufen 🍎\nFällig: 1. Dezember 2026 — 09:00 <Berlin>\n",
    "equals-signs": "a=b, c==d, =3D is not an escape, ends with =\n=\n",
    "trailing-spaces": "two spaces  \ntab\t\nspace before the end \n  \n",
    "long-lines": LONG_LINE + "\n" + "ü" * 100 + "\n",
    "no-final-newline": "Äpfel\n\nlast line without a newline",
    "empty": "",
    "from-line": "From here on\n.\n..\n",
}
SUBJECTS = {
    "ascii": "Reminder: Write report",
    "non-ascii": "Reminder: Äpfel & Birnen kaufen 🍎",
    "long-ascii": "Reminder: " + "prepare the quarterly report for the board meeting " * 2,
    "long-non-ascii": "Reminder: Äpfel, Birnen und Gemüse für das Wochenende kaufen (late)",
    "equals-and-qmarks": "Reminder: 2 + 2 = 4? yes =? no ?=",
}
SENDERS = {
    "name-and-address": SENDER,
    "address-only": "reminders@dueflow.test",
    "non-ascii-name": "Dueflow Erinnerungen – Müller <reminders@dueflow.test>",
    "quoted-name": '"Dueflow, Reminders" <reminders@dueflow.test>',
}


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def header_and_body_lines(raw: bytes) -> tuple[list[bytes], list[bytes]]:
    head, _, body = raw.partition(b"\n\n")
    return head.split(b"\n"), body.split(b"\n")


def assert_reads_back_as(raw: bytes, mail: Email) -> EmailMessage:
    """`raw` is `mail`, 7-bit clean and folded within the line limits."""
    assert raw.isascii(), "not 7-bit clean"
    assert b"\r" not in raw  # one line ending (\n), like bytes(to_mime(...))
    headers, body = header_and_body_lines(raw)
    assert max(map(len, headers)) <= 78, [h for h in headers if len(h) > 78]
    assert max(map(len, body)) <= 76, [line for line in body if len(line) > 76]
    msg = parse(raw)
    assert not msg.defects and all(not msg[name].defects for name in msg.keys())
    [from_] = msg["From"].addresses
    name, addr = email.utils.parseaddr(mail.sender)
    assert (from_.display_name, from_.addr_spec) == (name, addr)
    assert msg["To"] == mail.to
    assert msg["Subject"] == mail.subject
    assert msg["Message-ID"] == mail.message_id
    assert email.utils.parsedate_to_datetime(msg["Date"]).tzinfo is not None
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg.get_content() == mail.text
    return msg


def without_date(raw: bytes) -> bytes:
    return re.sub(rb"\nDate: [^\n]*\n", b"\n", raw)


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_bodies_read_back_exactly(text):
    mail = Email(**{**vars(BASE), "text": text})
    fast, reference = mime_bytes(mail), bytes(to_mime(mail))
    assert_reads_back_as(fast, mail)
    assert_reads_back_as(reference, mail)
    assert without_date(fast) == without_date(reference)


@pytest.mark.parametrize("subject", SUBJECTS.values(), ids=SUBJECTS.keys())
def test_subjects_read_back_exactly_and_fold_within_78_characters(subject):
    mail = Email(**{**vars(BASE), "subject": subject, "text": TEXTS["non-ascii"]})
    msg = assert_reads_back_as(mime_bytes(mail), mail)
    assert parse(bytes(to_mime(mail)))["Subject"] == msg["Subject"] == subject


@pytest.mark.parametrize("sender", SENDERS.values(), ids=SENDERS.keys())
def test_senders_read_back_exactly(sender):
    mail = Email(**{**vars(BASE), "sender": sender})
    assert_reads_back_as(mime_bytes(mail), mail)
    assert_reads_back_as(bytes(to_mime(mail)), mail)
    assert without_date(mime_bytes(mail)) == without_date(bytes(to_mime(mail)))


def test_short_ascii_headers_are_written_as_they_are():
    raw = mime_bytes(BASE)
    headers, _ = header_and_body_lines(raw)
    assert headers[:5] == [
        b'Content-Type: text/plain; charset="utf-8"',
        b"MIME-Version: 1.0",
        b"Content-Transfer-Encoding: quoted-printable",
        b"From: dueflow <reminders@dueflow.test>",
        b"To: alice@example.com",
    ]
    assert headers[5:] == [
        b"Subject: Reminder: Write report",
        headers[6],  # the Date
        b"Message-ID: <r-6f1c0b2e-20261201T080000Z@dueflow>",
    ]
    assert headers[6].startswith(b"Date: ") and headers[6].endswith(b" GMT")


def test_the_quoted_printable_body_escapes_what_it_must():
    mail = Email(**{**vars(BASE), "text": "a = b  \nÄ\n"})
    _, body = mime_bytes(mail).split(b"\n\n", 1)
    assert body == b"a =3D b =20\n=C3=84\n"


@pytest.mark.parametrize(
    ("to", "sender"),
    [
        ("jürgen@example.com", SENDER),  # non-ASCII local part (SMTPUTF8)
        ("alice@bücher.example", SENDER),  # non-ASCII domain
        ("alice@example.com", "Dueflow <erinnerungen-müller@dueflow.test>"),
    ],
)
def test_non_ascii_addresses_fall_back_to_the_default_policy(to, sender):
    mail = Email(**{**vars(BASE), "to": to, "sender": sender, "text": TEXTS["non-ascii"]})
    for raw in (mime_bytes(mail), bytes(to_mime(mail))):
        msg = parse(raw)
        assert msg["To"].addresses[0].addr_spec == to
        [from_] = msg["From"].addresses
        assert (from_.display_name, from_.addr_spec) == email.utils.parseaddr(sender)
        assert msg["Subject"] == mail.subject
        assert msg["Message-ID"] == mail.message_id
        assert msg.get_content() == mail.text
        assert msg["Content-Transfer-Encoding"] == "quoted-printable"
        _, body = header_and_body_lines(raw)
        assert max(map(len, body)) <= 76
    assert without_date(mime_bytes(mail)) == without_date(bytes(to_mime(mail)))


def test_text_that_looks_like_an_encoded_word_reads_back_alike_from_both():
    """The stdlib decodes "=?charset?q?...?=" in a header wherever it stands; both writers pass
    it through unchanged, so both read back alike (the default policy's builder does the same)."""
    mail = Email(**{**vars(BASE), "subject": "Reminder: x =?utf-8?q?looks_encoded?= y"})
    fast, reference = parse(mime_bytes(mail)), parse(bytes(to_mime(mail)))
    assert fast["Subject"] == reference["Subject"] == "Reminder: x looks encoded y"
    assert without_date(mime_bytes(mail)) == without_date(bytes(to_mime(mail)))


def test_a_header_with_a_line_break_is_not_written_as_two_headers():
    mail = Email(**{**vars(BASE), "subject": "Reminder: x\nBcc: mallory@example.com"})
    try:
        raw = mime_bytes(mail)
    except email.errors.HeaderParseError:
        return  # refusing it is fine too
    assert parse(raw)["Bcc"] is None


words = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=25,
)
# short names: a long non-ASCII one is a known defect (see the end of this module)
names = st.text(st.characters(categories=("L", "N"), max_codepoint=0x24F), min_size=1, max_size=8)
bodies = st.text(
    # the characters str.splitlines() also breaks on are left out: a plain-text reminder body
    # has \n line breaks only, and the parser reads those others back as \n
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\r\v\f"),
    max_size=400,
).filter(lambda s: s == "\n".join(s.splitlines()) + ("\n" if s.endswith("\n") else ""))


@settings(max_examples=examples(150), deadline=None)
@given(
    title=st.lists(words, min_size=1, max_size=14).map(" ".join),
    name=st.lists(names, max_size=2).map(" ".join),
    text=bodies,
)
def test_any_reminder_reads_back_exactly(title, name, text):
    """Subjects as `compose` makes them ("Reminder: " + title), sender names of a few words."""
    sender = f"{name} <reminders@dueflow.test>" if name else "reminders@dueflow.test"
    mail = Email(**{**vars(BASE), "sender": sender, "subject": f"Reminder: {title}", "text": text})
    assert_reads_back_as(mime_bytes(mail), mail)


# -- known defects ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject", [SUBJECTS["long-ascii"], SUBJECTS["long-non-ascii"]], ids=["ascii", "non-ascii"]
)
def test_to_mime_folds_long_subjects_within_78_characters(subject):
    mail = Email(**{**vars(BASE), "subject": subject})
    headers, _ = header_and_body_lines(bytes(to_mime(mail)))
    assert max(map(len, headers)) <= 78, [h for h in headers if len(h) > 78]


def test_a_long_non_ascii_sender_name_is_folded_within_78_characters():
    name = "Dueflow Erinnerungsdienst für Aufgaben und Termine – Müller & Söhne"
    sender = f"{name} <reminders@dueflow.test>"
    mail = Email(**{**vars(BASE), "sender": sender})
    headers, _ = header_and_body_lines(mime_bytes(mail))
    assert max(map(len, headers)) <= 78, [h for h in headers if len(h) > 78]


@pytest.mark.xfail(
    strict=True,
    reason="BUG (minor, not reachable through compose(), whose subjects start with 'Reminder: '):"
    " an ASCII subject whose first word does not fit on the Subject line is folded before that"
    " word by email.header.Header, and email.policy.default reads it back with a leading space",
)
def test_a_subject_starting_with_a_long_word_reads_back_exactly():
    subject = "https://example.com/" + "a" * 80
    mail = Email(**{**vars(BASE), "subject": subject})
    assert parse(bytes(to_mime(mail)))["Subject"] == subject
    assert parse(mime_bytes(mail))["Subject"] == subject


@pytest.mark.xfail(
    strict=True,
    reason=(
        "BUG (minor, not new: the default-policy fallback did this before): a non-ASCII address "
        "is written with an RFC 2047 encoded-word inside the addr-spec, e.g. "
        "'To: =?utf-8?q?j=C3=BCrgen?=@example.com', which RFC 2047 sec. 5 forbids; Python's "
        "own parser reads it back with header defects, and in the sender's domain not at all. A "
        "conforming message needs raw UTF-8 headers (RFC 6532, policy utf8=True, SMTPUTF8)"
    ),
)
@pytest.mark.parametrize(
    ("to", "sender"),
    [
        ("jürgen@example.com", SENDER),
        ("alice@bücher.example", SENDER),
        ("alice@example.com", "Dueflow <erinnerungen@dueflow.tëst>"),
    ],
    ids=["local-part", "domain", "sender-domain"],
)
def test_non_ascii_addresses_carry_no_encoded_word(to, sender):
    mail = Email(**{**vars(BASE), "to": to, "sender": sender})
    raw = mime_bytes(mail)
    address_lines = [h for h in header_and_body_lines(raw)[0] if h.startswith((b"To:", b"From:"))]
    assert not any(b"=?" in line for line in address_lines), address_lines
    msg = parse(raw)
    assert msg["To"].addresses[0].addr_spec == to
    assert msg["From"].addresses[0].addr_spec == email.utils.parseaddr(sender)[1]
