"""A stored summary per patient for the clinician's list (issue 17), and the index the list pages by.

Revision ID: 0005_patient_summaries
Revises: 0004_audit_reason
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_patient_summaries"
down_revision = "0004_audit_reason"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patient_summaries",
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("verdict", sa.String(20), nullable=True),
        sa.Column("cows_total", sa.Integer(), nullable=True),
        sa.Column("cows_band", sa.String(40), nullable=True),
        sa.Column("cows_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("alerts", sa.JSON(), nullable=False),
        sa.Column("kb_version", sa.String(40), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_patients_display_name_id", "patients", ["display_name", "id"])


def downgrade() -> None:
    op.drop_index("ix_patients_display_name_id", table_name="patients")
    op.drop_table("patient_summaries")
