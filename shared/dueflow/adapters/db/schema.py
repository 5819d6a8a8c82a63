"""Tables, as SQLAlchemy Core. Alembic migrations (migrations/versions) create them; this module
describes them for queries. Full-text search objects are dialect-specific and live in migrations."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData()


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in Python; `timestamptz` on PostgreSQL, naive UTC text on SQLite
    (fixed-width, so text order is time order)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.DateTime(timezone=False))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


UUID = sa.Uuid(as_uuid=False)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("email", sa.String(320)),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),  # 0005
    # the user chose the address in their profile: a token's `email` claim no longer replaces it
    sa.Column("email_from_profile", sa.Boolean, nullable=False, server_default=sa.false()),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    # casefolded title: Unicode-aware, case-insensitive sort on every database (SQLite's lower()
    # only folds ASCII)
    sa.Column("title_sort", sa.String(500), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("priority", sa.SmallInteger, nullable=False),  # rank: 0 none .. 3 high
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("due_at", UTCDateTime),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("recurrence", sa.JSON),
    sa.Column("series_id", UUID),
    sa.Column("occurrence", sa.Integer),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # one instance per position in a series, whatever races: the recurrence function relies on it
    sa.UniqueConstraint("series_id", "occurrence", name="uq_tasks_series_occurrence"),
)

# One row per (task, tag): indexed tag filters and tag counts; tasks.tags keeps the order shown.
task_tags = sa.Table(
    "task_tags",
    metadata,
    sa.Column("task_id", UUID, sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag", sa.String(50), primary_key=True),
    sa.Column("user_id", sa.String(255), nullable=False),
)

reminders = sa.Table(
    "reminders",
    metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("task_id", UUID, sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("position", sa.SmallInteger, nullable=False),
    sa.Column("before", sa.String(40)),
    sa.Column("at", UTCDateTime),
    sa.Column("remind_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("emitted_at", UTCDateTime),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("reminder_id", UUID, nullable=False),
    sa.Column("remind_at", UTCDateTime, nullable=False),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("backend", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("reminder_id", "remind_at", name="uq_notifications_instance"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("seq", BIGID, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(128), nullable=False),
    sa.Column("partition_key", sa.String(128)),
    sa.Column("payload", sa.Text, nullable=False),  # the structured-mode CloudEvent, as JSON
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("last_error", sa.Text),
)

task_changes = sa.Table(  # the live feed's change log (migration 0006)
    "task_changes",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("task_id", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(128), nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("event_time", sa.String(40), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)

task_changes_horizon = sa.Table(
    "task_changes_horizon",
    metadata,
    sa.Column("name", sa.String(16), primary_key=True),
    sa.Column("pruned_through", BIGID, nullable=False),
)

live_tickets = sa.Table(
    "live_tickets",
    metadata,
    sa.Column("ticket_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

processed_commands = sa.Table(
    "processed_commands",
    metadata,
    sa.Column("source", sa.String(255), primary_key=True),
    sa.Column("event_id", sa.String(255), primary_key=True),
    sa.Column("processed_at", UTCDateTime, nullable=False),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("event_source", sa.String(255), nullable=False),
    sa.Column("event_id", sa.String(255), nullable=False),
    sa.Column("event_type", sa.String(255), nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("error_code", sa.String(16)),
    sa.Column("error_dest", sa.Text),
    sa.Column("error_data", sa.Text),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("replayed_at", UTCDateTime),
    sa.UniqueConstraint("event_source", "event_id", "error_dest", name="uq_dead_letters_event"),
)

# One secret calendar feed URL per user (0007): only the token's SHA-256 is kept.
calendar_tokens = sa.Table(
    "calendar_tokens",
    metadata,
    sa.Column("user_id", sa.String(255), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("token_hash", name="uq_calendar_tokens_hash"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)


def utcnow() -> datetime:
    return datetime.now(UTC)
