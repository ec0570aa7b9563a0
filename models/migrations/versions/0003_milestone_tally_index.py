"""milestone indexes for the counts: ix_milestone_tally, ix_milestone_plan_status

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 03:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Both new indexes start with plan_id, so the single-column one is redundant: dropping it
    # keeps the number of indexes each milestone write maintains the same plus one.
    op.create_index(
        "ix_milestone_tally",
        "milestone",
        ["plan_id", "objective_id", "lead_agency_id", "status", "slipped_on", "due_end"],
    )
    op.create_index("ix_milestone_plan_status", "milestone", ["plan_id", "status", "updated_at"])
    op.drop_index("ix_milestone_plan_id", table_name="milestone")


def downgrade() -> None:
    op.create_index("ix_milestone_plan_id", "milestone", ["plan_id"])
    op.drop_index("ix_milestone_plan_status", table_name="milestone")
    op.drop_index("ix_milestone_tally", table_name="milestone")
