"""a working draft's digest per objective report: objectivereport.draft_digest

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 03:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: an existing draft is compared row by row at its next compile,
    # which then records its digest.
    with op.batch_alter_table("objectivereport") as batch:
        batch.add_column(sa.Column("draft_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("objectivereport") as batch:
        batch.drop_column("draft_digest")
