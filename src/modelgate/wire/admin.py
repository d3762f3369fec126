"""Request bodies of OpenAI's Admin API as modelgate serves it (``api/admin_*.py``,
docs/admin-api.md): the fields of OpenAI's ``ProjectCreateRequest``, ``ProjectUpdateRequest``,
``UserRoleUpdateRequest``, ``ProjectUserCreateRequest`` and ``ProjectUserUpdateRequest``. Fields
OpenAI defines that modelgate has no use for (residency, external keys, personas) are accepted
and ignored, as are unknown ones (OpenAI's schemas allow them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from modelgate.wire.service import PlainText


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class ProjectCreate(_Body):
    name: PlainText = Field(min_length=1, max_length=200)
    residency: Any = None
    external_key_id: str | None = None


class ProjectUpdate(_Body):
    name: PlainText | None = Field(default=None, min_length=1, max_length=200)
    external_key_id: str | None = None


class UserRoleUpdate(_Body):
    role: str | None = Field(default=None, max_length=16)
    role_id: str | None = None
    technical_level: str | None = None
    developer_persona: str | None = None


class ProjectUserCreate(_Body):
    user_id: str | None = Field(default=None, max_length=40)
    email: PlainText | None = Field(default=None, min_length=3, max_length=320)
    role: str = Field(max_length=16)


class ProjectUserUpdate(_Body):
    role: str | None = Field(default=None, max_length=16)
