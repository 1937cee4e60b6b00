"""Index the audit log by actor, action and time: the login throttle counts a username's failures.

Revision ID: 0002_audit_actor_index
Revises: 0001_initial_schema
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0002_audit_actor_index"
down_revision = "0001_initial_schema"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_log_actor_action_at", "audit_log", ["actor", "action", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_actor_action_at", table_name="audit_log")
