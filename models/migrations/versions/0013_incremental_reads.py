"""Incremental reads: record states keep match keys, read watermarks, reconcile cadence

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 02:10:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("record_states") as batch:
        batch.add_column(sa.Column("link", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("email_domain", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("website_domain", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "read_watermarks",
        sa.Column("orchestration_id", sa.Integer(), nullable=False),
        sa.Column("modified_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("full_read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("field_max_length", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["orchestration_id"],
            ["orchestrations.id"],
            name=op.f("fk_read_watermarks_orchestration_id_orchestrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("orchestration_id", name=op.f("pk_read_watermarks")),
    )
    with op.batch_alter_table("orchestrations") as batch:
        batch.add_column(
            sa.Column("reconcile_days", sa.Integer(), server_default="7", nullable=False)
        )
    with op.batch_alter_table("sync_runs") as batch:
        batch.add_column(
            sa.Column("full_read", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("read_mode", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("read_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("sync_runs") as batch:
        batch.drop_column("read_since")
        batch.drop_column("read_mode")
        batch.drop_column("full_read")
    with op.batch_alter_table("orchestrations") as batch:
        batch.drop_column("reconcile_days")
    op.drop_table("read_watermarks")
    with op.batch_alter_table("record_states") as batch:
        batch.drop_column("seen_at")
        batch.drop_column("website_domain")
        batch.drop_column("email_domain")
        batch.drop_column("link")
