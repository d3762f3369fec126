"""Identity for companies (issue 25): SCIM resources, OpenID Connect sign-ins in progress, and the
accounts' identities at OpenID providers.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scim_resources",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("unique_value", sa.String(320), nullable=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("tenant", "resource_type", "unique_value", name="uq_scim_resources_unique"),
    )
    op.create_index("ix_scim_resources_type", "scim_resources", ["tenant", "resource_type"])
    op.create_index("ix_scim_resources_account_id", "scim_resources", ["account_id"])
    op.create_table(
        "oidc_logins",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("next_path", sa.String(2000), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_table(
        "account_identities",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("groups", sa.JSON, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_sign_in_at", TS, nullable=False),
        sa.UniqueConstraint("issuer", "subject", name="uq_account_identities_subject"),
    )
    op.create_index("ix_account_identities_account_id", "account_identities", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_account_identities_account_id", "account_identities")
    op.drop_table("account_identities")
    op.drop_table("oidc_logins")
    op.drop_index("ix_scim_resources_account_id", "scim_resources")
    op.drop_index("ix_scim_resources_type", "scim_resources")
    op.drop_table("scim_resources")
