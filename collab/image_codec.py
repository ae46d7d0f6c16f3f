"""An uploaded image, decoded and written again: the only bytes collab stores
and serves of an image (protocol.md §10.6). Sans-I/O and CPU-bound: the
caller runs :func:`clean_image` in a worker thread (collab.images), never
on the event loop.

Why decode and re-encode rather than store what was sent:

- **Only images.** The bytes are opened with Pillow's PNG, JPEG and WebP
  decoders alone and every pixel is decoded: whatever the ``Content-Type``
  said, a file that is not one of these (an HTML page, an SVG with script,
  a polyglot), or is damaged or truncated, is refused (``unsupported_image``).
- **No metadata.** Photos carry EXIF (the GPS position where they were
  taken, the camera's serial number, the time), XMP, comments, ICC
  profiles, PNG text chunks. None is copied: the image is written from its
  pixels alone. Its EXIF orientation is applied first (the picture stands
  as its author saw it), and pixels in a colour space other than sRGB are
  converted to sRGB before the profile goes, so colours stay right.
- **Bounded work.** The byte limit is checked before anything is parsed,
  the pixel limit from the header before any pixel is decoded (a
  "decompression bomb" declares huge dimensions in a tiny file): a refusal
  allocates nothing for pixels (``image_too_large``).

The result's digest (SHA-256 of the bytes written) names it: the same
picture uploaded twice is one stored image. Pillow writes the same bytes
for the same pixels, so that holds across uploads and nodes that run the
same Pillow.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageCms, ImageOps

from collab.errors import ImageTooLarge, UnsupportedImage

__all__ = ["FORMATS", "MEDIA_TYPES", "CleanImage", "clean_image"]

#: Pillow's format names collab takes, and the media type each is served as.
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
MEDIA_TYPES = frozenset(FORMATS.values())
#: JPEG and lossy WebP quality of the written image.
QUALITY = 90

# collab's own pixel limit (max_image_pixels, at most 80 million: collab.config)
# is below Pillow's warning threshold, and an image past Pillow's error
# threshold is refused as too large as well: its warning would only be noise.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


@dataclass(frozen=True, slots=True)
class CleanImage:
    """An image as collab stores it."""

    data: bytes
    media_type: str
    width: int
    height: int

    @property
    def digest(self) -> str:
        """Its name: the SHA-256 of :attr:`data`, 64 lowercase hex digits."""
        return hashlib.sha256(self.data).hexdigest()


def clean_image(data: bytes, *, max_bytes: int, max_pixels: int) -> CleanImage:
    """The image in ``data`` re-encoded in its own format, without metadata.

    Raises ImageTooLarge if ``data``, the pixels its header declares, or the
    re-encoded image pass the limits (before the pixels are decoded, for the
    first two), and UnsupportedImage for anything that does not decode as a
    PNG, JPEG or WebP image in full (one frame: animations are refused).
    """
    if len(data) > max_bytes:
        raise ImageTooLarge(f"the image has {len(data)} bytes; the limit is {max_bytes}")
    with _opened(data) as image:
        width, height = image.size
        if width < 1 or height < 1 or width * height > max_pixels:
            raise ImageTooLarge(
                f"the image is {width}×{height} pixels; the limit is {max_pixels} pixels"
            )
        if getattr(image, "n_frames", 1) != 1:
            raise UnsupportedImage("animated images are not taken: send one frame")
        fmt = str(image.format)
        try:
            image.load()  # every pixel: a truncated or damaged file fails here
        except Exception:  # noqa: BLE001 - Pillow's decoders raise many kinds for bad input
            raise UnsupportedImage("the image is damaged or truncated") from None
        pixels = _upright(image)
    out = _encode(pixels, fmt)
    if len(out) > max_bytes:
        raise ImageTooLarge(f"the image has {len(out)} bytes once re-encoded; limit {max_bytes}")
    return CleanImage(out, FORMATS[fmt], pixels.width, pixels.height)


class _opened:
    """``Image.open`` with only collab's formats, its failures typed."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._image: Image.Image | None = None

    def __enter__(self) -> Image.Image:
        try:
            self._image = Image.open(io.BytesIO(self._data), formats=list(FORMATS))
        except Image.DecompressionBombError:
            raise ImageTooLarge("the image declares more pixels than any image taken") from None
        except Exception:  # noqa: BLE001 - as above: any failure is "not an image we take"
            raise UnsupportedImage("not a PNG, JPEG or WebP image") from None
        return self._image

    def __exit__(self, *exc: object) -> None:
        if self._image is not None:
            self._image.close()


def _upright(image: Image.Image) -> Image.Image:
    """The pixels as they should be seen: EXIF orientation applied, in sRGB,
    in a mode the format writes, with no ``info`` (no metadata) but a PNG's
    transparent colour."""
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - unreadable EXIF: the pixels as stored
        upright = image.copy()
    info: dict[Any, Any] = upright.info
    transparency = info.get("transparency")
    icc = info.get("icc_profile")
    if icc and upright.mode in ("RGB", "RGBA", "CMYK"):
        upright = _to_srgb(upright, icc)
    target = _mode_for(str(image.format), upright)
    if target != upright.mode:
        upright = upright.convert(target)
        transparency = None  # the conversion kept it as alpha, or it has none
    upright.info = {} if transparency is None else {"transparency": transparency}
    return upright


def _to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    """``image`` converted from its ICC profile to sRGB (as it is, if the
    profile cannot be used: the picture must not be refused for it)."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        mode = "RGBA" if image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(image, source, srgb, outputMode=mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image
    return converted if converted is not None else image


_PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"})


def _mode_for(fmt: str, image: Image.Image) -> str:
    """A mode ``fmt`` writes that keeps what ``image`` shows (alpha included)."""
    alpha = image.mode in ("RGBA", "LA", "PA") or image.has_transparency_data
    if fmt == "PNG":
        return image.mode if image.mode in _PNG_MODES else ("RGBA" if alpha else "RGB")
    if fmt == "JPEG":
        return image.mode if image.mode in ("L", "RGB") else "RGB"
    return "RGBA" if alpha else "RGB"


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    options: dict[str, Any] = {}
    if fmt == "PNG" and "transparency" in image.info:
        options["transparency"] = image.info["transparency"]
    elif fmt in ("JPEG", "WEBP"):
        options["quality"] = QUALITY
    image.save(out, format=fmt, **options)
    return out.getvalue()
