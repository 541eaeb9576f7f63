"""records a run has read and compared so far; planners of a run found dead

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 15:10:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("records_read", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("plans_lost", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_column("plans_lost")
        batch_op.drop_column("records_read")
