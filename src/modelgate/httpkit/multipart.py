"""A ``multipart/form-data`` body (already read under the edge's size limit) as fields and files.

Bounded: at most ``max_parts`` parts, each text field at most ``max_field_bytes``; a body that is not
multipart, has no boundary or does not parse is an ``InvalidRequestError`` (400) saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from modelgate.errors import InvalidRequestError


@dataclass(slots=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)

    def one(self, name: str) -> str | None:
        """The field's value; a 400 when it is given more than once."""
        values = self.fields.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise InvalidRequestError(f"{name}: given {len(values)} times; give it once", param=name)
        return values[0]


def parse_form(
    body: bytes, content_type: str | None, *, max_parts: int = 64, max_field_bytes: int = 65536
) -> Form:
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidRequestError(
            "Body validation error: send multipart/form-data (with a boundary) carrying the file and fields"
        )
    form = Form()
    parts: list[tuple[dict[bytes, bytes], list[bytes]]] = []
    header_field: list[bytes] = []
    header_value: list[bytes] = []

    def begin() -> None:
        if len(parts) >= max_parts:
            raise InvalidRequestError(f"Body validation error: more than {max_parts} form parts")
        parts.append(({}, []))

    def data(buf: bytes, start: int, end: int) -> None:
        parts[-1][1].append(buf[start:end])

    def hfield(buf: bytes, start: int, end: int) -> None:
        header_field.append(buf[start:end])

    def hvalue(buf: bytes, start: int, end: int) -> None:
        header_value.append(buf[start:end])

    def hend() -> None:
        parts[-1][0][b"".join(header_field).lower()] = b"".join(header_value)
        header_field.clear()
        header_value.clear()

    callbacks = {
        "on_part_begin": begin,
        "on_part_data": data,
        "on_header_field": hfield,
        "on_header_value": hvalue,
        "on_header_end": hend,
    }
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except MultipartParseError:
        raise InvalidRequestError(
            "Body validation error: the multipart/form-data body does not parse"
        ) from None
    for headers, chunks in parts:
        _, disp = parse_options_header(headers.get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        if not name:
            raise InvalidRequestError("Body validation error: a form part has no name")
        value = b"".join(chunks)
        if b"filename" in disp:
            filename = disp[b"filename"].decode("utf-8", "replace")[:256]
            ctype = headers.get(b"content-type", b"application/octet-stream").decode("latin-1")[:128]
            if name in form.files:
                raise InvalidRequestError(f"{name}: given more than once; send one file", param=name)
            form.files[name] = Upload(filename, ctype, value)
            continue
        if len(value) > max_field_bytes:
            raise InvalidRequestError(f"{name[:64]}: longer than {max_field_bytes} bytes", param=name[:64])
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequestError(f"{name[:64]}: not UTF-8 text", param=name[:64]) from None
        form.fields.setdefault(name, []).append(text)
    return form
