"""Users get a profile: their time zone (relative dates such as "tomorrow 9am" resolve in it) and
whether their e-mail address was chosen in the profile (then a token's `email` claim no longer
replaces it).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:  # batch: SQLite cannot ALTER most things
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"))
        batch.add_column(
            sa.Column("email_from_profile", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email_from_profile")
        batch.drop_column("timezone")
