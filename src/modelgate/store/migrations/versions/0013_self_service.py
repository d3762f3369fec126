"""Self-service accounts (issue 30): verified emails, one-time mailed tokens (verification, password
reset, the second step of a two-factor sign-in), TOTP credentials with recovery codes, and the alert
mails already sent.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _account_fk(primary_key: bool = False) -> sa.Column[int]:
    return sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "mail_tokens",
        sa.Column("digest", sa.String(64), primary_key=True),
        _account_fk(),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_mail_tokens_account_id", "mail_tokens", ["account_id"])
    op.create_table(
        "totp_credentials",
        _account_fk(primary_key=True),
        sa.Column("secret_sealed", sa.Text, nullable=False),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "totp_recovery_codes",
        sa.Column("digest", sa.String(64), primary_key=True),
        _account_fk(),
    )
    op.create_index("ix_totp_recovery_codes_account_id", "totp_recovery_codes", ["account_id"])
    op.create_table(
        "mail_alerts",
        _account_fk(primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("ref", sa.String(64), primary_key=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mail_alerts")
    op.drop_index("ix_totp_recovery_codes_account_id", "totp_recovery_codes")
    op.drop_table("totp_recovery_codes")
    op.drop_table("totp_credentials")
    op.drop_index("ix_mail_tokens_account_id", "mail_tokens")
    op.drop_table("mail_tokens")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("email_verified_at")
