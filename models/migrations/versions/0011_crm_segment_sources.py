"""Segments read from a CRM (segment_crm_sources) and their refreshes (segment_refreshes)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 00:15:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = "status IN ('queued', 'running')"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "segment_crm_sources",
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("crm_object_id", sa.String(length=64), nullable=False),
        sa.Column("id_column", sa.String(length=255), nullable=True),
        sa.Column("schedule", sa.String(length=100), nullable=True),
        sa.Column("next_refresh_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_segment_crm_sources_connection_id_connections"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_crm_sources_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("segment_id", name=op.f("pk_segment_crm_sources")),
    )
    op.create_index(
        op.f("ix_segment_crm_sources_connection_id"),
        "segment_crm_sources",
        ["connection_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_segment_crm_sources_next_refresh_at"),
        "segment_crm_sources",
        ["next_refresh_at"],
        unique=False,
    )
    op.create_table(
        "segment_refreshes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("entered", sa.Integer(), nullable=False),
        sa.Column("exited", sa.Integer(), nullable=False),
        sa.Column("unmatched", sa.Integer(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("unmatched_rows", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_refreshes_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_refreshes")),
    )
    op.create_index(
        op.f("ix_segment_refreshes_segment_id"), "segment_refreshes", ["segment_id"], unique=False
    )
    # One queued or running refresh per segment.
    op.create_index(
        "uq_segment_refreshes_one_active",
        "segment_refreshes",
        ["segment_id"],
        unique=True,
        postgresql_where=sa.text(_ACTIVE),
        sqlite_where=sa.text(_ACTIVE),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(
        "uq_segment_refreshes_one_active",
        table_name="segment_refreshes",
        postgresql_where=sa.text(_ACTIVE),
        sqlite_where=sa.text(_ACTIVE),
    )
    op.drop_index(op.f("ix_segment_refreshes_segment_id"), table_name="segment_refreshes")
    op.drop_table("segment_refreshes")
    op.drop_index(op.f("ix_segment_crm_sources_next_refresh_at"), table_name="segment_crm_sources")
    op.drop_index(op.f("ix_segment_crm_sources_connection_id"), table_name="segment_crm_sources")
    op.drop_table("segment_crm_sources")
