"""an agency's own deadline: updaterequest.extended_deadline

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: every existing request keeps the cycle's deadline.
    with op.batch_alter_table("updaterequest") as batch:
        batch.add_column(sa.Column("extended_deadline", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("updaterequest") as batch:
        batch.drop_column("extended_deadline")
