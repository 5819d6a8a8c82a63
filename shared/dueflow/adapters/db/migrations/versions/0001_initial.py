"""Initial schema: users, tasks (+ tags, reminders, full-text search), outbox, leases.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from dueflow.adapters.db.schema import BIGID, UUID, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# SQLite: two FTS5 indexes. Stemmed (porter) matches "tasks" to "task"; the unstemmed one with
# prefix indexes lets a half-typed last word ("meeti") find "meeting", whose stem is "meet".
_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE tasks_fts USING fts5(task_id UNINDEXED, title, description, "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE VIRTUAL TABLE tasks_fts_prefix USING fts5(task_id UNINDEXED, title, description, "
    "tokenize='unicode61 remove_diacritics 2', prefix='2 3 4')",
]
for _t in ("tasks_fts", "tasks_fts_prefix"):
    _SQLITE_FTS += [
        f"CREATE TRIGGER {_t}_ai AFTER INSERT ON tasks BEGIN "
        f"INSERT INTO {_t}(task_id, title, description) "
        f"VALUES (new.id, new.title, coalesce(new.description, '')); END",
        f"CREATE TRIGGER {_t}_ad AFTER DELETE ON tasks BEGIN "
        f"DELETE FROM {_t} WHERE task_id = old.id; END",
        f"CREATE TRIGGER {_t}_au AFTER UPDATE OF title, description ON tasks BEGIN "
        f"UPDATE {_t} SET title = new.title, description = coalesce(new.description, '') "
        f"WHERE task_id = old.id; END",
    ]

# PostgreSQL: one generated tsvector holding English stems and unstemmed words ('simple'), so the
# same GIN index answers stemmed words and prefix matches of the last word.
_PG_FTS = [
    "ALTER TABLE tasks ADD COLUMN search tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english', title), 'A') || "
    "setweight(to_tsvector('english', coalesce(description, '')), 'B') || "
    "to_tsvector('simple', title || ' ' || coalesce(description, ''))) STORED",
    "CREATE INDEX ix_tasks_search ON tasks USING gin (search)",
]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("email", sa.String(320)),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "tasks",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("title_sort", sa.String(500), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("due_at", UTCDateTime),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("recurrence", sa.JSON),
        sa.Column("series_id", UUID),
        sa.Column("occurrence", sa.Integer),
        sa.Column("completed_at", UTCDateTime),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("series_id", "occurrence", name="uq_tasks_series_occurrence"),
    )
    # One index per sort order, led by the filters every list query has (user, status).
    op.create_index("ix_tasks_user_due", "tasks", ["user_id", "status", "due_at", "id"])
    op.create_index("ix_tasks_user_priority", "tasks", ["user_id", "status", "priority", "due_at"])
    op.create_index("ix_tasks_user_title", "tasks", ["user_id", "status", "title_sort"])
    op.create_index("ix_tasks_user_created", "tasks", ["user_id", "created_at"])
    op.create_index("ix_tasks_user_updated", "tasks", ["user_id", "updated_at"])
    op.create_table(
        "task_tags",
        sa.Column("task_id", UUID, sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag", sa.String(50), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
    )
    op.create_index("ix_task_tags_user_tag", "task_tags", ["user_id", "tag"])
    op.create_table(
        "reminders",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("task_id", UUID, sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("position", sa.SmallInteger, nullable=False),
        sa.Column("before", sa.String(40)),
        sa.Column("at", UTCDateTime),
        sa.Column("remind_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
    )
    op.create_index("ix_reminders_task", "reminders", ["task_id"])
    op.create_index("ix_reminders_due", "reminders", ["status", "remind_at"])
    op.create_table(
        "outbox",
        sa.Column("seq", BIGID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("partition_key", sa.String(128)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("last_error", sa.Text),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    dialect = op.get_bind().dialect.name
    for statement in (
        _SQLITE_FTS if dialect == "sqlite" else _PG_FTS if dialect == "postgresql" else []
    ):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS tasks_fts")
        op.execute("DROP TABLE IF EXISTS tasks_fts_prefix")
    for table in ("leases", "outbox", "reminders", "task_tags", "tasks", "users"):
        op.drop_table(table)
