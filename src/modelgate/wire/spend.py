"""Request bodies of OpenAI's Admin API spend limits and spend alerts as modelgate serves them
(``api/admin_spend.py``, docs/admin-api.md): ``UpdateOrganizationSpendLimitBody`` /
``UpdateProjectSpendLimitBody`` and ``CreateSpendAlertBody``. Amounts are whole cents of USD; the
interval is ``month`` (OpenAI's only one)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from modelgate.wire.service import PlainText

MAX_CENTS = 1_000_000_000  # $10,000,000: the largest budget modelgate takes


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class SpendLimitBody(_Body):
    threshold_amount: int = Field(ge=1, le=MAX_CENTS)
    currency: Literal["USD"]
    interval: Literal["month"]


class NotificationChannel(_Body):
    type: Literal["email"]
    recipients: list[PlainText] = Field(max_length=20)
    subject_prefix: PlainText | None = Field(default=None, max_length=200)


class SpendAlertBody(_Body):
    threshold_amount: int = Field(ge=0, le=MAX_CENTS)
    currency: Literal["USD"]
    interval: Literal["month"]
    notification_channel: NotificationChannel
