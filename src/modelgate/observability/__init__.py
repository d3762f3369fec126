"""Observability: Prometheus metrics (``metrics.py``) and readiness checks (``health.py``)."""
