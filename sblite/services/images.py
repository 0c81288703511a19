"""Image resizing with Pillow, off the event loop: JPEG, PNG, WebP and GIF, never upscaled."""

from __future__ import annotations

import asyncio
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from sblite.errors import BadRequest

MAX_IMAGE_BYTES = 2 * 1024 * 1024
# Decoded pixels one resize may hold (RGBA: 4 bytes each, so about 160 MB at most); a small file
# that decodes to more is a decompression bomb.
MAX_PIXELS = 40_000_000
FORMATS = {"JPEG": (".jpg", "image/jpeg"), "PNG": (".png", "image/png"), "WEBP": (".webp", "image/webp"),
           "GIF": (".gif", "image/gif")}
# Pillow warns (instead of failing) between its MAX_IMAGE_PIXELS and twice that: fail there too.
warnings.simplefilter("error", Image.DecompressionBombWarning)


@dataclass(frozen=True)
class Resized:
    """An encoded image."""

    data: bytes
    ext: str
    content_type: str
    width: int
    height: int


async def resize(data: bytes, max_width: float) -> Resized:
    """`data` scaled down to at most `max_width` pixels wide (aspect kept), in its own format."""
    return await asyncio.get_running_loop().run_in_executor(None, resize_now, data, max_width)


def resize_now(data: bytes, max_width: float) -> Resized:
    """The blocking work of `resize`; 400 for what is not a JPEG, PNG, WebP or GIF image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format or ""
            if kind not in FORMATS:
                raise BadRequest(f"invalid image: {kind or 'this'} format is not supported "
                                 f"(send JPEG, PNG, WebP or GIF)")
            if image.width * image.height > MAX_PIXELS:
                raise BadRequest(f"invalid image: {image.width}x{image.height} pixels is more than the "
                                 f"{MAX_PIXELS:,} a resize decodes")
            return _encode(_scaled(image, max_width), kind)
    except UnidentifiedImageError:
        raise BadRequest("invalid image: the file is not a JPEG, PNG, WebP or GIF image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadRequest(f"invalid image: it decodes to more than the {MAX_PIXELS:,} pixels a resize "
                         f"decodes (a decompression bomb?)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated or corrupt data
        raise BadRequest(f"invalid image: the file could not be decoded ({exc})") from None


def _scaled(image: Image.Image, max_width: float) -> Image.Image:
    upright = ImageOps.exif_transpose(image)  # phone photos: the pixels as they are meant to be seen
    width = min(upright.width, int(max_width))  # never upscaled: `width` is a maximum
    if width == upright.width:
        return upright
    height = max(1, round(upright.height * width / upright.width))
    return upright.resize((width, height), Image.Resampling.LANCZOS)


def _encode(image: Image.Image, kind: str) -> Resized:
    out = io.BytesIO()
    if kind == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    options = {"JPEG": {"quality": 85, "optimize": True}, "WEBP": {"quality": 85}}.get(kind, {})
    image.save(out, format=kind, **options)  # metadata (EXIF, GPS) is not copied
    ext, content_type = FORMATS[kind]
    return Resized(out.getvalue(), ext, content_type, image.width, image.height)
