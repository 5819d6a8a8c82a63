"""Calendar feed tokens: one secret feed URL per user (`GET /calendar/<token>.ics`), revocable.

Only a SHA-256 hash of the token is stored: the token is 256 random bits, so a fast hash is as
safe as a slow one (nothing to brute-force) and lets a feed request find its row by an index.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from dueflow.adapters.db.schema import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_tokens",
        # the primary key makes it one active token per user: a new one replaces the row
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),  # hex SHA-256
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_calendar_tokens_hash"),
    )


def downgrade() -> None:
    op.drop_table("calendar_tokens")
