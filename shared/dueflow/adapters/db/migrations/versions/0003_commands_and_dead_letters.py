"""Commands applied once per CloudEvent (source, id), and the dead-letter store.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from dueflow.adapters.db.schema import BIGID, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processed_commands",
        sa.Column("source", sa.String(255), primary_key=True),
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("processed_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("event_source", sa.String(255), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("event", sa.Text, nullable=False),  # structured CloudEvent JSON, as received
        sa.Column("error_code", sa.String(16)),  # knativeerrorcode
        sa.Column("error_dest", sa.Text),  # knativeerrordest
        sa.Column("error_data", sa.Text),  # knativeerrordata, decoded
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("replayed_at", UTCDateTime),
        # the same dead letter delivered twice is stored once
        sa.UniqueConstraint("event_source", "event_id", "error_dest", name="uq_dead_letters_event"),
    )


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("processed_commands")
