"""api calls per orchestration and UTC day

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 08:10:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "api_usage",
        sa.Column("orchestration_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["orchestration_id"],
            ["orchestrations.id"],
            name=op.f("fk_api_usage_orchestration_id_orchestrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("orchestration_id", "day", name=op.f("pk_api_usage")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("api_usage")
