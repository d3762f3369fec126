"""SigV4 against the published AWS test-suite vectors (also in botocore's tests/unit/auth/aws4_testsuite),
the credential chain, and the event-stream decoder against frames built by the fake's encoder."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelgate.errors import UpstreamProtocolError
from modelgate.providers.eventstream import EventStreamDecoder
from modelgate.providers.sigv4 import AWSCredentials, resolve_credentials, resolve_region, sign_headers
from tests.fakes.bedrock_server import encode_frame, event_frame

SUITE = AWSCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_TIME = datetime(2015, 8, 30, 12, 36, 0, tzinfo=UTC)


def _suite(method: str, target: str) -> str:
    headers = sign_headers(
        method=method,
        host="example.amazonaws.com",
        target=target,
        body=b"",
        credentials=SUITE,
        region="us-east-1",
        service="service",
        now=SUITE_TIME,
    )
    assert headers["X-Amz-Date"] == "20150830T123600Z"
    return headers["Authorization"]


@pytest.mark.parametrize(
    ("name", "method", "target", "signature"),
    [
        ("get-vanilla", "GET", "/", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("post-vanilla", "POST", "/", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        (
            "post-vanilla-empty-query-value",
            "POST",
            "/?Param1=value1",
            "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        ),
        (
            "get-vanilla-query-order-key-case",
            "GET",
            "/?Param2=value2&Param1=value1",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
    ],
)
def test_aws_test_suite_vectors(name: str, method: str, target: str, signature: str) -> None:
    assert _suite(method, target) == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={signature}"
    ), name


def test_session_token_is_sent_and_signed() -> None:
    creds = AWSCredentials("AKID", "secret", "session-token")
    headers = sign_headers(
        method="POST",
        host="bedrock-runtime.us-east-1.amazonaws.com",
        target="/model/a.b-v1%3A0/converse",
        body=b"{}",
        credentials=creds,
        region="us-east-1",
        service="bedrock",
        now=SUITE_TIME,
    )
    assert headers["X-Amz-Security-Token"] == "session-token"
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in headers["Authorization"]


def test_credential_chain_order(tmp_path: Path) -> None:
    shared = tmp_path / "credentials"
    shared.write_text(
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\n"
        "[work]\naws_access_key_id = AKIDWORK\naws_secret_access_key = s2\naws_session_token = t2\n"
    )
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(shared), "HOME": str(tmp_path)}
    assert resolve_credentials("b", {}, env).access_key_id == "AKIDDEFAULT"
    work = resolve_credentials("b", {}, {**env, "AWS_PROFILE": "work"})
    assert (work.access_key_id, work.session_token, work.source) == ("AKIDWORK", "t2", "profile work")
    assert resolve_credentials("b", {"profile": "work"}, env).access_key_id == "AKIDWORK"
    with_env = {**env, "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s3"}
    assert resolve_credentials("b", {}, with_env).source == "environment"
    explicit = {"access_key_id": "AKIDOPT", "secret_access_key": "s4"}
    assert resolve_credentials("b", explicit, with_env).access_key_id == "AKIDOPT"
    assert "s4" not in repr(resolve_credentials("b", explicit, {}))
    with pytest.raises(ValueError, match="no AWS credentials"):
        resolve_credentials("b", {"profile": "missing"}, env)
    with pytest.raises(ValueError, match="both"):
        resolve_credentials("b", {"access_key_id": "x"}, {})
    assert resolve_region("b", {}, {"AWS_REGION": "eu-west-1"}) == "eu-west-1"
    with pytest.raises(ValueError, match="region"):
        resolve_region("b", {}, {})


def test_event_stream_frames_split_anywhere() -> None:
    frames = event_frame("contentBlockDelta", {"delta": {"text": "hé"}}) + event_frame("messageStop", {})
    for cut in range(1, len(frames)):
        decoder = EventStreamDecoder("b")
        got = decoder.feed(frames[:cut]) + decoder.feed(frames[cut:])
        assert [m.header(":event-type") for m in got] == ["contentBlockDelta", "messageStop"]
        assert got[0].payload == '{"delta":{"text":"hé"}}'.encode()
        assert decoder.pending == 0


def test_event_stream_header_types() -> None:
    raw = (
        b"\x01a\x00"
        + b"\x01b\x04"
        + struct.pack(">i", -7)
        + b"\x01c\x06"
        + struct.pack(">H", 2)
        + b"\x00\x01"
    )
    total = 12 + len(raw) + 4
    prelude = struct.pack(">II", total, len(raw))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + raw
    (msg,) = EventStreamDecoder("b").feed(body + struct.pack(">I", zlib.crc32(body)))
    assert msg.headers == {"a": True, "b": -7, "c": b"\x00\x01"} and msg.payload == b""


@pytest.mark.parametrize("where", ["prelude", "message", "length"])
def test_event_stream_corruption_is_a_protocol_error(where: str) -> None:
    frame = bytearray(encode_frame({":event-type": "x"}, b"{}"))
    if where == "prelude":
        frame[9] ^= 1
    elif where == "message":
        frame[-6] ^= 1
    else:
        frame[0:12] = struct.pack(">II", 8, 0) + struct.pack(">I", zlib.crc32(struct.pack(">II", 8, 0)))
    with pytest.raises(UpstreamProtocolError):
        EventStreamDecoder("b").feed(bytes(frame))
