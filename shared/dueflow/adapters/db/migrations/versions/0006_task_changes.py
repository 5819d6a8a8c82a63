"""The live feed's durable change log: one row per task change, written in the transaction of the
change itself (by the outbox, the one door every task event goes through), kept for
DUEFLOW_LIVE_RETENTION; the prune horizon (the highest id pruned, so a position older than it
gets a reset); and the short-lived tickets a browser's EventSource opens a stream with.

On PostgreSQL every insert NOTIFYs channel dueflow_changes (statement-level: a transaction's
changes wake each listening `live` replica once); SQLite polls.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from dueflow.adapters.db.schema import BIGID, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CHANNEL = "dueflow_changes"  # dueflow.adapters.live_tail listens on it


def upgrade() -> None:
    op.create_table(
        "task_changes",
        # the position: global, increasing in commit order (see ChangeLog.record), never reused
        # (AUTOINCREMENT on SQLite, which would otherwise reuse a pruned maximum)
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_time", sa.String(40), nullable=False),
        sa.Column("data", sa.Text, nullable=False),  # the task as the API returns it, or {"id"}
        sa.Column("created_at", UTCDateTime, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_task_changes_user", "task_changes", ["user_id", "id"])
    op.create_index("ix_task_changes_created", "task_changes", ["created_at"])
    op.create_table(
        "task_changes_horizon",  # one row: every change with id <= pruned_through is gone
        sa.Column("name", sa.String(16), primary_key=True),
        sa.Column("pruned_through", BIGID, nullable=False),
    )
    op.execute("INSERT INTO task_changes_horizon (name, pruned_through) VALUES ('live', 0)")
    op.create_table(
        "live_tickets",
        sa.Column("ticket_hash", sa.String(64), primary_key=True),  # sha256 hex: no usable secret
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_live_tickets_expires", "live_tickets", ["expires_at"])
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION dueflow_changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER task_changes_notify AFTER INSERT ON task_changes "
        "FOR EACH STATEMENT EXECUTE FUNCTION dueflow_changes_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS task_changes_notify ON task_changes")
        op.execute("DROP FUNCTION IF EXISTS dueflow_changes_notify()")
    op.drop_table("live_tickets")
    op.drop_table("task_changes_horizon")
    op.drop_table("task_changes")
