"""Reminder delivery: when a tick emitted a reminder, and one row per e-mailed reminder instance.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from dueflow.adapters.db.schema import BIGID, UUID, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reminders") as batch:
        batch.add_column(sa.Column("emitted_at", UTCDateTime))
    # what a tick scans: scheduled, not yet emitted, by time
    op.create_index("ix_reminders_pending", "reminders", ["status", "emitted_at", "remind_at"])
    op.drop_index("ix_reminders_due", "reminders")
    op.create_table(
        "notifications",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("reminder_id", UUID, nullable=False),
        sa.Column("remind_at", UTCDateTime, nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),  # sent | failed
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        # one e-mail per reminder instance, however often reminder.due is delivered
        sa.UniqueConstraint("reminder_id", "remind_at", name="uq_notifications_instance"),
    )


def downgrade() -> None:
    op.drop_table("notifications")
    op.create_index("ix_reminders_due", "reminders", ["status", "remind_at"])
    op.drop_index("ix_reminders_pending", "reminders")
    with op.batch_alter_table("reminders") as batch:
        batch.drop_column("emitted_at")
