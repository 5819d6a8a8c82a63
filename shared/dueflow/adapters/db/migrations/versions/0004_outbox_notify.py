"""PostgreSQL: every transaction that adds outbox rows NOTIFYs channel dueflow_outbox.

The relay holding the lease LISTENs on it, so an event written by any replica of any function
leaves at once instead of at the holder's next poll. A statement-level trigger, and PostgreSQL
folds identical notifications of one transaction into one: a batch insert notifies once. Nothing
on SQLite (one machine: the writer kicks its own relay, the others poll).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CHANNEL = "dueflow_outbox"  # dueflow.adapters.outbox_relay listens on it


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION dueflow_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION dueflow_outbox_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS dueflow_outbox_notify()")
