"""Request bodies of modelgate's organisation endpoints (``api/organisations.py``,
docs/organisations.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from modelgate.wire.service import ModelName, PlainText

Period = Literal["day", "week", "month", "none"]
OrgRole = Literal["owner", "admin", "member", "billing"]
ProjectRole = Literal["owner", "member"]


class ProjectBody(BaseModel):
    """``POST /v1/projects`` (all fields) and ``PATCH /v1/projects/{id}`` (the fields sent)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: PlainText | None = Field(default=None, min_length=1, max_length=200)
    allowed_models: list[ModelName] | None = Field(default=None, max_length=500)
    rpm: int | None = Field(default=None, ge=1, le=1_000_000_000)
    tpm: int | None = Field(default=None, ge=1, le=1_000_000_000_000)


class MemberBody(BaseModel):
    """``PUT /v1/organisation/members`` (``role``: an organisation role) and
    ``PUT /v1/projects/{id}/members`` (a project role)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    email: PlainText = Field(min_length=3, max_length=320)
    role: str = Field(min_length=1, max_length=16)


class BudgetBody(BaseModel):
    """``PUT /v1/budgets``: the organisation's budget (no ``project_id``), a project's, or a member's
    within a project (``project_id`` and ``member_email``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    project_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    member_email: PlainText | None = Field(default=None, min_length=3, max_length=320)
    period: Period = "month"
    limit_usd: float = Field(ge=0, le=10_000_000)
    alert_thresholds: list[int] | None = Field(default=None, max_length=10)
    alert_webhook: PlainText | None = Field(default=None, max_length=2000)


class BillingBody(BaseModel):
    """``PUT /v1/organisation/billing`` (an operator only): prepaid credits or postpaid."""

    model_config = ConfigDict(extra="forbid", strict=True)

    mode: Literal["prepaid", "postpaid"]
