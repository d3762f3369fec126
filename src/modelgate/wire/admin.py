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


class InviteProject(_Body):
    id: str = Field(max_length=40)
    role: str = Field(max_length=16)


class InviteCreate(_Body):
    """OpenAI's ``InviteRequest``: ``role`` owner or reader (taken as member), or one of
    modelgate's organisation roles (admin, member, billing)."""

    email: PlainText = Field(min_length=3, max_length=320)
    role: str = Field(max_length=16)
    projects: list[InviteProject] | None = Field(default=None, max_length=100)


class ServiceAccountCreate(_Body):
    name: PlainText = Field(min_length=1, max_length=200)
    create_service_account_only: bool | None = None


class ServiceAccountUpdate(_Body):
    name: PlainText | None = Field(default=None, min_length=1, max_length=200)
    role: str | None = Field(default=None, max_length=16)


class ServiceAccountKeyCreate(_Body):
    """OpenAI's ``CreateProjectServiceAccountApiKeyBody``: ``scopes`` are OpenAI's permission names,
    which modelgate's keys do not have: accepted and ignored."""

    name: PlainText | None = Field(default=None, max_length=200)
    scopes: list[str] | None = None
    expires_in_seconds: int | None = Field(default=None, ge=1, le=31_536_000)


class AdminKeyCreate(_Body):
    name: PlainText = Field(max_length=200)
    expires_in_seconds: int | None = Field(default=None, ge=1, le=31_536_000)


class ModelPermissionsUpdate(_Body):
    mode: str = Field(max_length=16)
    model_ids: list[PlainText] = Field(max_length=1000)


class RateLimitUpdate(_Body):
    """OpenAI's ``ProjectRateLimitUpdateRequest``: modelgate keeps a project's requests and tokens
    per minute; the other limits have no counterpart and are refused when given."""

    max_requests_per_1_minute: int | None = Field(default=None, ge=1, le=2**31 - 1)
    max_tokens_per_1_minute: int | None = Field(default=None, ge=1, le=2**31 - 1)
    max_images_per_1_minute: int | None = None
    max_audio_megabytes_per_1_minute: int | None = None
    max_requests_per_1_day: int | None = None
    batch_1_day_max_input_tokens: int | None = None
