"""Initial schema: users, tokens, patients, assessments, plans, administrations, audit, CDS.

Revision ID: 0001_initial_schema
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial_schema"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("external_id", sa.String(200), nullable=True, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("created_by", sa.Integer, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(100), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("role in ('clinician', 'patient')", name="ck_users_role"),
    )
    with op.batch_alter_table("patients") as batch:
        batch.create_foreign_key("fk_patients_created_by", "users", ["created_by"], ["id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("scale", sa.String(10), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("band", sa.String(40), nullable=True),
        sa.Column("items", sa.JSON, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("recorded_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("kb_version", sa.String(40), nullable=False),
        sa.Column("software_version", sa.String(40), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("scale in ('cows', 'sows')", name="ck_assessments_scale"),
    )
    op.create_index("ix_assessments_patient_time", "assessments", ["patient_id", "recorded_at"])
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("taper", sa.Boolean, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("tramadol_verdict", sa.String(20), nullable=False),
        sa.Column("tramadol_max_daily_mg", sa.Integer, nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("kb_version", sa.String(40), nullable=False),
        sa.Column("software_version", sa.String(40), nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_plans_patient_id", "plans", ["patient_id"])
    op.create_table(
        "medication_administrations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("drug", sa.String(60), nullable=False),
        sa.Column("dose_mg", sa.Float, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("days_supply", sa.Float, nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("recorded_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("kind in ('administration', 'dispense')", name="ck_admin_kind"),
    )
    op.create_index("ix_admin_patient_time", "medication_administrations", ["patient_id", "at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("resource", sa.String(60), nullable=False),
        sa.Column("resource_id", sa.String(60), nullable=True),
        sa.Column("patient_id", sa.Integer, nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_patient_id", "audit_log", ["patient_id"])
    op.create_table(
        "cds_feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("service_id", sa.String(100), nullable=False),
        sa.Column("card", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("override_reason", sa.JSON, nullable=True),
        sa.Column("accepted_suggestions", sa.JSON, nullable=True),
        sa.Column("outcome_at", TS, nullable=True),
        sa.Column("client", sa.String(300), nullable=True),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_table(
        "cds_jti",
        sa.Column("jti", sa.String(300), primary_key=True),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_cds_jti_expires_at", "cds_jti", ["expires_at"])


def downgrade() -> None:
    for table in (
        "cds_jti",
        "cds_feedback",
        "audit_log",
        "medication_administrations",
        "plans",
        "assessments",
        "api_tokens",
    ):
        op.drop_table(table)
    with op.batch_alter_table("patients") as batch:
        batch.drop_constraint("fk_patients_created_by", type_="foreignkey")
    op.drop_table("users")
    op.drop_table("patients")
