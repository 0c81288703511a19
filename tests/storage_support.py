"""Helpers of the storage tests: multipart bodies built byte by byte, uploads, and what is on disk."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from PIL import Image

from tests.conftest import Api

BOUNDARY = "sbliteTestBoundary7MA4YWxk"

# (field name, file name or None for a plain field, bytes, Content-Type of the part or None)
Part = tuple[str, str | bytes | None, bytes, str | None]


def multipart(parts: list[Part], boundary: str = BOUNDARY) -> tuple[bytes, str]:
    """A multipart/form-data body with exactly these bytes (file names are not escaped); (body, content type)."""
    out = bytearray()
    for name, filename, data, ctype in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'Content-Disposition: form-data; name="{name}"'.encode()
        if filename is not None:
            raw = filename if isinstance(filename, bytes) else filename.encode()
            disposition += b'; filename="' + raw + b'"'
        out += disposition + b"\r\n"
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


async def post_parts(api: Api, path: str, token: str | None, parts: list[Part]) -> tuple[int, Any]:
    """POST a multipart body as the JS client does (no JSON content type)."""
    body, ctype = multipart(parts)
    return await post_raw(api, path, token, body, ctype)


async def post_raw(api: Api, path: str, token: str | None, body: bytes, ctype: str | None) -> tuple[int, Any]:
    """POST raw bytes with this Content-Type."""
    headers = {"SB-PUBLIC-KEY": api.pk}
    if ctype:
        headers["Content-Type"] = ctype
    if token:
        headers["Authorization"] = f"Bearer {token}"
    resp = await api.client.post(path, data=io.BytesIO(body), headers=headers)
    if resp.status > 299:
        return resp.status, await resp.text()
    return resp.status, await resp.json()


async def upload(api: Api, token: str, data: bytes, filename: str = "hello.txt", **fields: str) -> dict[str, Any]:
    """Upload a file that must be accepted; `{id, url}`."""
    parts: list[Part] = [("file", filename, data, "application/octet-stream")]
    parts += [(name, None, value.encode(), None) for name, value in fields.items()]
    status, body = await post_parts(api, "/storage/upload", token, parts)
    assert status == 200, body
    assert set(body) == {"id", "url"}, body
    return body


def path_of_url(url: str) -> str:
    """The path (and query) of an absolute URL, for the test client."""
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def files_under(root: Path) -> set[Path]:
    """Every file below `root`, relative to it."""
    found = set()
    for folder, _dirs, names in os.walk(root):
        found.update(Path(folder, name).relative_to(root) for name in names)
    return found


def png(width: int, height: int, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A PNG image of one color."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def image_of(data: bytes) -> Image.Image:
    """Decode stored image bytes."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
