"""One rule for the API key a request carries, for the doors and the service endpoints alike."""

from __future__ import annotations

import pytest

from modelgate.doors.base import DoorRequest, bearer_or_api_key
from modelgate.httpkit.deps import bearer_from


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "key"),
    [
        ("Bearer k1", None, "k1"),
        ("bearer  k1 ", "k2", "k1"),  # the bearer wins over x-api-key
        (None, "k2", "k2"),
        ("Basic dXNlcjpwdw==", "k2", "k2"),  # another scheme (a proxy's) falls back to x-api-key
        ("Bearer ", "k2", "k2"),  # an empty bearer too
        ("Basic dXNlcjpwdw==", None, None),
        ("Bearer ", None, None),
        (None, "", None),
        (None, None, None),
    ],
)
def test_one_rule_for_doors_and_service_endpoints(
    authorization: str | None, x_api_key: str | None, key: str | None
) -> None:
    assert bearer_from(authorization, x_api_key) == key
    headers = {n: v for n, v in (("authorization", authorization), ("x-api-key", x_api_key)) if v is not None}
    assert bearer_or_api_key(DoorRequest(path="/v1/chat/completions", headers=headers, body=b"")) == key
