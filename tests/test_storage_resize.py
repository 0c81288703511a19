"""POST /extra/resizeimg over the real app: stored scaled copies with their real size, and every bad input a 4xx."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from sblite.app import create_app
from sblite.services.images import MAX_IMAGE_BYTES, MAX_PIXELS
from tests.conftest import Api, make_config
from tests.storage_support import files_under, image_of, multipart, path_of_url, png, post_parts, post_raw


@pytest.fixture
async def api(aiohttp_client, tmp_path) -> Api:
    return Api(await aiohttp_client(create_app(make_config(tmp_path))))


def encoded(kind: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 120).save(out, format=kind)
    return out.getvalue()


async def resize(api: Api, token: str, data: bytes, width: str | None, filename: str = "pic.png",
                 **fields: str) -> tuple[int, object]:
    parts = [("file", filename, data, "image/png")]
    if width is not None:
        parts.append(("width", None, width.encode(), None))
    parts += [(name, None, value.encode(), None) for name, value in fields.items()]
    return await post_parts(api, "/extra/resizeimg", token, parts)


async def fetched(api: Api, token: str, url: str) -> tuple[str, bytes]:
    resp = await api.client.get(path_of_url(url), headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    return resp.headers["Content-Type"], await resp.read()


@pytest.mark.parametrize(("kind", "mode", "ext", "ctype"), [
    ("PNG", "RGB", ".png", "image/png"), ("JPEG", "RGB", ".jpg", "image/jpeg"),
    ("WEBP", "RGB", ".webp", "image/webp"), ("GIF", "P", ".gif", "image/gif"), ("PNG", "RGBA", ".png", "image/png"),
])
async def test_resize_keeps_aspect_and_format_and_records_the_real_size(api: Api, kind: str, mode: str, ext: str,
                                                                        ctype: str) -> None:
    token = await api.register()
    status, body = await resize(api, token, encoded(kind, (800, 600), mode), "200.7", filename="in.bin",
                                name="Thumb")
    assert status == 200, body
    assert isinstance(body, dict) and body["url"].endswith(f"/{body['id']}{ext}")
    served_type, data = await fetched(api, token, body["url"])
    assert served_type == ctype
    image = image_of(data)
    assert (image.format, image.size) == (kind, (200, 150))
    status, page = await api.call("GET", "/storage/files", token)
    (row,) = page["results"]
    assert row["size"] == len(data) > 0 and row["name"] == "Thumb"  # StaticBackend records 0


async def test_resize_never_upscales(api: Api) -> None:
    token = await api.register()
    status, body = await resize(api, token, png(120, 80), "4000")
    assert status == 200, body
    assert image_of((await fetched(api, token, body["url"]))[1]).size == (120, 80)


async def test_resize_turns_phone_photos_upright_and_drops_their_metadata(api: Api) -> None:
    token = await api.register()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    exif[0x010F] = "A phone"
    out = io.BytesIO()
    Image.new("RGB", (400, 200), (10, 200, 10)).save(out, format="JPEG", exif=exif)
    status, body = await resize(api, token, out.getvalue(), "100")
    assert status == 200, body
    image = image_of((await fetched(api, token, body["url"]))[1])
    assert image.size == (100, 200) and not image.getexif()


def _bomb(side: int = int(MAX_PIXELS ** 0.5) + 100) -> bytes:
    """A small PNG that decodes to more pixels than a resize takes (side x side)."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, format="PNG", optimize=True)
    return out.getvalue()


BAD = [  # (what, file bytes, width, status, message start)
    ("a text file", b"just some words, not pixels", "100", 400, "invalid image"),
    ("random bytes named .png", bytes(range(256)) * 8, "100", 400, "invalid image"),
    ("a truncated PNG", png(300, 300)[:200], "100", 400, "invalid image"),
    ("a BMP", encoded("BMP", (20, 20)), "10", 400, "invalid image: BMP format is not supported"),
    ("a decompression bomb", _bomb(), "100", 400, "invalid image: 6424x6424 pixels is more than"),
    ("a bomb past Pillow's own limit", _bomb(20_000), "100", 400, "invalid image: it decodes to more than"),
    ("no width", png(20, 20), None, 400, "missing width"),
    ("an empty width", png(20, 20), "", 400, "missing width"),
    ("a negative width", png(20, 20), "-5", 400, "invalid width"),
    ("a zero width", png(20, 20), "0", 400, "invalid width"),
    ("a word for width", png(20, 20), "wide", 400, "invalid width"),
    ("NaN", png(20, 20), "nan", 400, "invalid width"),
    ("infinity", png(20, 20), "inf", 400, "invalid width"),
    ("a huge width", png(20, 20), "1e9", 400, "invalid width"),
    ("an empty file", b"", "10", 400, "invalid file: the file is empty"),
    ("a file past 2 MB", b"\x89PNG" + b"\x00" * MAX_IMAGE_BYTES, "10", 413, "image too large: the limit is 2 MB"),
]


@pytest.mark.parametrize(("what", "data", "width", "status", "message"), BAD, ids=[b[0] for b in BAD])
async def test_bad_resizes_are_4xx_and_store_nothing(api: Api, tmp_path: Path, what: str, data: bytes,
                                                     width: str | None, status: int, message: str) -> None:
    token = await api.register()
    got, text = await resize(api, token, data, width)
    assert got == status and isinstance(text, str) and text.startswith(message), (what, text)
    assert files_under(tmp_path / "test-files") == set()
    assert (await api.call("GET", "/storage/usage", token))[1]["bytes"] == 0


async def test_resize_without_a_file_or_a_form_is_400(api: Api) -> None:
    token = await api.register()
    status, text = await post_parts(api, "/extra/resizeimg", token, [("width", None, b"100", None)])
    assert status == 400 and text.startswith("invalid form body: the `file` field is missing")
    body, _ = multipart([("file", "a.png", png(10, 10), None)])
    status, text = await post_raw(api, "/extra/resizeimg", token, body, "application/json")
    assert status == 400 and text.startswith("invalid body")
