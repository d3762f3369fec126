"""Identity per organisation (issue 25, on top of 0012's organisations): what an identity's groups
granted at its latest evaluation (organisation and project roles, so that the next one can take
back what they no longer grant), organisations' SCIM tokens, and "SSO only" per organisation.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("account_identities") as batch:
        batch.add_column(sa.Column("granted", sa.JSON, nullable=True))
    op.create_table(
        "scim_tokens",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column(
            "org_id", sa.Integer, sa.ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("prefix", sa.String(8), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_scim_tokens_org_id", "scim_tokens", ["org_id"])
    op.create_table(
        "org_sign_in",
        sa.Column(
            "org_id", sa.Integer, sa.ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("sso_only", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("org_sign_in")
    op.drop_index("ix_scim_tokens_org_id", "scim_tokens")
    op.drop_table("scim_tokens")
    with op.batch_alter_table("account_identities") as batch:
        batch.drop_column("granted")
