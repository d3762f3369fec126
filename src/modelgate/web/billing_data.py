"""What the Billing page and its CSV exports read: one parsed filter, as the data floor's filters
(``store/usage.py``, ``store/transactions.py``).

Every value comes from the query string and is validated here (dates within a bounded range, ids
that fit a column, ids of the signed-in account only); a bad value falls back to the default and
the page says so, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from starlette.datastructures import QueryParams

from modelgate.store.transactions import TxFilter
from modelgate.store.usage import LogFilter

DEFAULT_DAYS = 14
MAX_DAYS = 366
MIN_DATE, MAX_DATE = date(2000, 1, 1), date(2100, 12, 31)
STATUSES = ("success", "error")
ORIGINS = ("api", "playground")


@dataclass
class BillingFilter:
    start: date
    end: date  # inclusive
    model: str = ""
    status: str = ""
    origin: str = ""
    key_id: int | None = None
    project_id: int | None = None  # the keys of one project (organisations)
    member_id: int | None = None  # the keys of one member
    request_id: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=UTC)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def logs(self, account_id: int) -> LogFilter:
        """The account's request rows this filter selects (a request id: that request only)."""
        if self.request_id:
            return LogFilter(account_id=account_id, request_id=self.request_id)
        return self.usage(account_id)

    def usage(self, account_id: int) -> LogFilter:
        """The rows the usage chart and breakdowns count (the request-id lookup aside)."""
        return LogFilter(
            account_id=account_id,
            key_id=self.key_id,
            since=self.since,
            until=self.until,
            project_id=self.project_id,
            member_id=self.member_id,
            models=(self.model,) if self.model else (),
            statuses=(self.status,) if self.status else (),
            origin=self.origin or None,
        )

    def transactions(self, account_id: int) -> TxFilter:
        return TxFilter(
            account_id,
            since=self.since,
            until=self.until,
            project_id=self.project_id,
            member_id=self.member_id,
        )

    def query(self) -> dict[str, str]:
        """The filter as query parameters (for links and export URLs)."""
        out = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        for name, value in (
            ("model", self.model),
            ("status", self.status),
            ("origin", self.origin),
            ("key", str(self.key_id) if self.key_id is not None else ""),
            ("project", str(self.project_id) if self.project_id is not None else ""),
            ("member", str(self.member_id) if self.member_id is not None else ""),
            ("request_id", self.request_id),
        ):
            if value:
                out[name] = value
        return out


def _date(raw: str | None, name: str, problems: list[str]) -> date | None:
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw.strip()[:10])
    except ValueError:
        problems.append(f"“{name}” must be a date like 2026-01-31; the default was used.")
        return None
    if not MIN_DATE <= value <= MAX_DATE:
        problems.append(f"“{name}” must be between {MIN_DATE} and {MAX_DATE}; the default was used.")
        return None
    return value


def _text(raw: str | None, limit: int) -> str:
    value = (raw or "").strip()
    return "" if len(value) > limit or any(ord(c) < 32 for c in value) else value


def parse_filter(params: QueryParams, today: date) -> BillingFilter:
    problems: list[str] = []
    end = _date(params.get("to"), "to", problems) or today
    start = _date(params.get("from"), "from", problems) or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        start, end = end, start
    if (end - start).days + 1 > MAX_DAYS:
        start = end - timedelta(days=MAX_DAYS - 1)
        problems.append(f"A range is at most {MAX_DAYS} days; it was shortened.")
    key_raw = params.get("key") or ""
    key_id = int(key_raw) if key_raw.isdigit() and len(key_raw) <= 9 else None
    project_raw, member_raw = params.get("project") or "", params.get("member") or ""
    status = params.get("status") or ""
    origin = params.get("origin") or ""
    return BillingFilter(
        start=start,
        end=end,
        model=_text(params.get("model"), 200),
        status=status if status in STATUSES else "",
        origin=origin if origin in ORIGINS else "",
        key_id=key_id,
        project_id=int(project_raw) if project_raw.isdigit() and len(project_raw) <= 9 else None,
        member_id=int(member_raw) if member_raw.isdigit() and len(member_raw) <= 9 else None,
        request_id=_text(params.get("request_id"), 128),
        problems=problems,
    )
