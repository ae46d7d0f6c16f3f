"""collab.image_codec: what an uploaded image becomes before it is stored.

Images are made here with Pillow (no binary fixtures): a JPEG carrying GPS
EXIF, PNGs with text chunks, a WebP with EXIF, an ICC profile, orientation;
and what must be refused: text, other formats, truncated or forged files,
a decompression bomb (huge declared dimensions in a tiny file, refused
without allocating its pixels) and too many bytes (refused before decoding).
"""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile, PngImagePlugin

from collab.errors import AppCode, ImageTooLarge, UnsupportedImage
from collab.image_codec import clean_image

MAX_BYTES = 5 << 20
MAX_PIXELS = 25_000_000


def clean(data: bytes, **limits: int):
    return clean_image(
        data,
        max_bytes=limits.get("max_bytes", MAX_BYTES),
        max_pixels=limits.get("max_pixels", MAX_PIXELS),
    )


def picture(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    """A picture with some structure (a gradient), so encoders have work."""
    image = Image.new(mode, size)
    w, h = size
    image.putdata(
        [((x * 255) // w, (y * 255) // h, 120)[: len(mode)] for y in range(h) for x in range(w)]
    )
    return image


def saved(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.BodySerialNumber] = "SN-123456"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (40.0, 26.0, 46.0),
        ExifTags.GPS.GPSLongitudeRef: "W",
        ExifTags.GPS.GPSLongitude: (3.0, 42.0, 10.0),
    }
    return exif


def reopened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_jpeg_with_gps_exif_comes_back_without_it():
    source = saved(picture(), "JPEG", exif=gps_exif().tobytes(), comment=b"taken at home")
    original = reopened(source)
    assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo), "the test image carries GPS"
    assert b"SN-123456" in source and b"taken at home" in source

    result = clean(source)
    assert result.media_type == "image/jpeg" and (result.width, result.height) == (64, 48)
    image = reopened(result.data)
    assert image.format == "JPEG"
    assert not image.getexif() and "exif" not in image.info
    assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert b"Exif" not in result.data and b"SN-123456" not in result.data
    assert b"PhoneMaker" not in result.data and b"taken at home" not in result.data
    assert "comment" not in image.info


def test_the_exif_orientation_is_applied_then_dropped():
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored sideways: turn 90° clockwise to view
    source = saved(picture((80, 30)), "JPEG", exif=exif.tobytes())
    result = clean(source)
    assert (result.width, result.height) == (30, 80)
    image = reopened(result.data)
    assert image.size == (30, 80) and ExifTags.Base.Orientation not in image.getexif()


def test_a_png_loses_its_text_chunks_and_keeps_its_pixels():
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Ann Example")
    info.add_text("Comment", "at 40.4461N 3.7028W", zip=True)
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>secret</x:xmpmeta>")
    original = picture(mode="RGBA")
    source = saved(original, "PNG", pnginfo=info, exif=gps_exif().tobytes())
    assert reopened(source).text, "the test image carries text chunks"

    result = clean(source)
    assert result.media_type == "image/png"
    image = reopened(result.data)
    assert image.text == {} and not image.getexif()
    for chunk in (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP"):
        assert chunk not in result.data
    assert image.mode == "RGBA" and image.tobytes() == original.tobytes()


def test_a_palette_png_keeps_its_transparent_colour():
    image = Image.new("P", (8, 8), 1)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.putpixel((0, 0), 0)
    result = reopened(clean(saved(image, "PNG", transparency=0)).data)
    rgba = result.convert("RGBA")
    assert rgba.getpixel((0, 0))[3] == 0 and rgba.getpixel((1, 1)) == (0, 255, 0, 255)


def test_an_icc_profile_is_not_kept():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = saved(picture(), "JPEG", icc_profile=srgb)
    assert "icc_profile" in reopened(source).info
    assert "icc_profile" not in reopened(clean(source).data).info


def test_a_webp_loses_its_exif():
    source = saved(picture(mode="RGBA"), "WEBP", exif=gps_exif().tobytes())
    assert reopened(source).getexif()
    result = clean(source)
    assert result.media_type == "image/webp"
    image = reopened(result.data)
    assert image.format == "WEBP" and not image.getexif() and b"SN-123456" not in result.data


def test_the_same_picture_is_the_same_digest():
    source = saved(picture(), "PNG")
    first, second = clean(source), clean(source)
    assert first.data == second.data and first.digest == second.digest
    assert len(first.digest) == 64 and first.digest == first.digest.lower()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"just some text, not an image\n" * 10, id="text"),
        pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>", id="svg"),
        pytest.param(b"<!doctype html><script>alert(1)</script>", id="html"),
        pytest.param(saved(picture(), "GIF"), id="gif"),
        pytest.param(saved(picture(), "BMP"), id="bmp"),
        pytest.param(saved(picture(), "TIFF"), id="tiff"),
        pytest.param(b"", id="empty"),
    ],
)
def test_what_is_not_png_jpeg_or_webp_is_refused(data):
    with pytest.raises(UnsupportedImage) as info:
        clean(data)
    assert info.value.code is AppCode.UNSUPPORTED_IMAGE


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_truncated_image_is_refused(fmt):
    whole = saved(picture((200, 150)), fmt)
    with pytest.raises(UnsupportedImage):
        clean(whole[: len(whole) // 2])


def test_a_forged_png_is_refused():
    """A PNG signature and header in front of anything else."""
    with pytest.raises(UnsupportedImage):
        clean(png_header(64, 48) + b"<script>alert(1)</script>" * 20)


def test_an_animation_is_refused():
    frames = [picture(), picture().rotate(90)]
    source = saved(frames[0], "PNG", save_all=True, append_images=frames[1:])
    with pytest.raises(UnsupportedImage):
        clean(source)


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and an IHDR chunk declaring ``width`` × ``height``
    (8-bit RGB), with a correct CRC: a header any decoder believes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


def bomb(width: int, height: int) -> bytes:
    """Huge declared dimensions, a few hundred bytes: an IDAT of zeros
    compressed (it would inflate to width × height × 3 bytes) and IEND."""
    row = b"\x00" * (width * 3 + 1)
    compressor = zlib.compressobj(9)
    idat = compressor.compress(row * 4) + compressor.flush()
    chunks = b""
    for kind, body in ((b"IDAT", idat), (b"IEND", b"")):
        chunks += (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )
    return png_header(width, height) + chunks


@pytest.mark.parametrize("size", [(6_000, 6_000), (50_000, 50_000), (1, 30_000_000)])
def test_a_decompression_bomb_is_refused_without_allocating(size, monkeypatch):
    data = bomb(*size)
    assert len(data) < 200_000
    # Pillow allocates pixels outside Python's allocator: watch whether it
    # starts decoding at all (a spy that calls through), and what Python holds.
    loads: list[object] = []
    real_load = ImageFile.ImageFile.load

    def spy(self):
        loads.append(self)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLarge) as info:
            clean(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.code is AppCode.IMAGE_TOO_LARGE
    assert loads == [], "no pixel was decoded"
    assert peak < 4 << 20, f"{peak} bytes allocated for a refused image"


def test_the_pixel_limit_and_one_past_it():
    source = saved(picture((50, 40)), "PNG")
    assert clean(source, max_pixels=2000).width == 50
    with pytest.raises(ImageTooLarge):
        clean(source, max_pixels=1999)


def test_too_many_bytes_are_refused_before_decoding():
    """Not even an image: the byte limit is checked first."""
    with pytest.raises(ImageTooLarge):
        clean(b"x" * 1001, max_bytes=1000)
    source = saved(picture(), "PNG")
    assert clean(source, max_bytes=len(source)).media_type == "image/png"
    with pytest.raises(ImageTooLarge):
        clean(source, max_bytes=len(source) - 1)
