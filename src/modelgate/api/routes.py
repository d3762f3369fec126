"""Every router of the service endpoints, in the order the app mounts them (``app.py``): the key
API (models, keys, organisations, budgets), OpenAI's Admin API, billing, usage and metrics."""

from __future__ import annotations

from fastapi import APIRouter

from modelgate.api import (
    admin_api_keys,
    admin_audit,
    admin_costs,
    admin_invites,
    admin_keys,
    admin_limits,
    admin_projects,
    admin_roles,
    admin_spend,
    admin_spend_alerts,
    admin_unsupported,
    admin_usage,
    admin_users,
    billing,
    budgets,
    keys,
    metrics,
    model_metrics,
    models,
    organisations,
    usage,
)


def service_routers() -> list[APIRouter]:
    return [
        model_metrics.router,  # before models: /models/metrics is not a model
        models.router,
        keys.router,
        organisations.router,
        budgets.router,
        admin_projects.router,
        admin_users.router,
        admin_invites.router,
        admin_keys.router,
        admin_api_keys.router,
        admin_limits.router,
        admin_spend.router,
        admin_spend_alerts.router,
        admin_roles.router,
        admin_unsupported.router,
        admin_usage.router,
        admin_costs.router,
        admin_audit.router,
        billing.router,
        usage.router,
        metrics.router,
    ]
