"""A ``multipart/form-data`` request body for upstreams that take uploads (OpenAI's audio and image
edits): text fields and files, with a random boundary; file names are reduced to printable
characters without quotes or line breaks."""

from __future__ import annotations

import secrets


def form_body(fields: list[tuple[str, str]], files: list[tuple[str, str, str, bytes]]) -> tuple[bytes, str]:
    """``fields``: (name, value); ``files``: (name, filename, content type, bytes). Returns the body
    and its content type."""
    boundary = "modelgate-" + secrets.token_hex(16)
    out: list[bytes] = []
    for name, value in fields:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.append(value.encode() + b"\r\n")
    for name, filename, ctype, data in files:
        safe = "".join(c for c in filename if c.isprintable() and c not in '"\\\r\n')[:200] or "upload"
        kind = (
            "".join(c for c in ctype if c.isprintable() and c not in "\r\n")[:128]
            or "application/octet-stream"
        )
        out.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{safe}"\r\n'
            f"Content-Type: {kind}\r\n\r\n".encode()
        )
        out.extend([data, b"\r\n"])
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"
