"""The one image-loading path: every kind of file a user may bring either loads correctly or is refused
with a message that names it and says what to do. Every file is built here, in memory."""

from __future__ import annotations

import hashlib
import io
import struct
import tomllib
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, features

from shufflenet_viz import images
from shufflenet_viz.images import ImageError, load_image, load_image_file

CONFIG = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A valid, tiny PNG whose header declares width x height 8-bit grey pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4)
    return (images.PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows)
            + png_chunk(b"IEND", b""))


def refusal(data: bytes, filename: str) -> str:
    with pytest.raises(ImageError) as caught:
        load_image(data, filename)
    return str(caught.value)


# --- refusals ------------------------------------------------------------------------------------------

def test_image_error_is_a_value_error():
    assert issubclass(ImageError, ValueError)


def test_empty_file_is_refused():
    message = refusal(b"", "empty.jpg")
    assert "empty.jpg" in message and "empty" in message.split("empty.jpg", 1)[1]


def test_html_named_jpg_is_refused_and_called_html():
    page = b"<!DOCTYPE html>\n<html><head><title>Login</title></head><body>Sign in</body></html>"
    message = refusal(page, "photo.jpg")
    assert message.startswith("photo.jpg is not an image Pillow can read (it looks like an HTML web page)")
    assert "JPEG, PNG" in message


def test_text_named_jpg_is_refused_and_called_text():
    message = refusal(b"these are my holiday notes\nday 1: beach\n", "notes.jpg")
    assert "notes.jpg" in message and "it looks like text" in message


@pytest.mark.parametrize("data, kind", [
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "an SVG drawing"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n", "a PDF document"),
    (struct.pack(">I", 24) + b"ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64, "a video or an ISO media file"),
    (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40, "a ZIP archive or Office document"),
])
def test_other_documents_are_named_in_the_refusal(data, kind):
    assert f"(it looks like {kind})" in refusal(data, "upload.jpg")


def test_truncated_jpeg_is_refused():
    whole = encode(noise(120, 90), "JPEG", quality=90)
    message = refusal(whole[: len(whole) // 2], "cut.jpg")
    assert "cut.jpg looks damaged or incomplete" in message and "truncated" in message


def test_png_with_corrupt_image_data_is_refused():
    data = bytearray(encode(noise(40, 30), "PNG"))
    idat = data.find(b"IDAT")
    data[idat + 4 + 10] ^= 0xFF  # one flipped byte inside the pixel data: its CRC no longer matches
    message = refusal(bytes(data), "broken.png")
    assert "broken.png is a damaged PNG" in message and "IDAT" in message


def test_png_with_bad_header_crc_is_refused():
    data = bytearray(encode(noise(40, 30), "PNG"))
    ihdr = data.find(b"IHDR")
    data[ihdr + 4 + 13] ^= 0xFF  # the IHDR checksum itself
    assert "IHDR" in refusal(bytes(data), "header.png")


def test_png_cut_short_is_refused():
    data = encode(noise(40, 30), "PNG")
    assert "incomplete PNG" in refusal(data[:-30], "short.png")


@pytest.mark.parametrize("width, height, declared", [(30000, 30000, "900 megapixels"),
                                                      (8000, 8000, "8000x8000 pixels")])
def test_decompression_bomb_is_refused_before_decoding(monkeypatch, width, height, declared):
    decoded = []
    original_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or original_load(self))
    bomb = png_declaring(width, height)
    assert len(bomb) < 100_000
    message = refusal(bomb, "bomb.png")
    assert declared in message and "limit is 50 megapixels" in message and "not decoded" in message
    assert decoded == []
    assert Image.MAX_IMAGE_PIXELS == 89478485  # our limit did not change Pillow's for the process


def test_pixel_limit_is_ours_and_below_pillows():
    assert images.MAX_PIXELS == 50_000_000 < Image.MAX_IMAGE_PIXELS


def test_bytes_above_upload_limit_are_refused_stating_the_limit():
    data = b"\xff\xd8" + b"\x00" * images.UPLOAD_LIMIT_BYTES
    message = refusal(data, "huge.jpg")
    assert f"the limit is {images.UPLOAD_LIMIT_MB} MB" in message and "huge.jpg is 25.1 MB" in message


def test_file_above_upload_limit_is_refused_without_reading_it(tmp_path, monkeypatch):
    path = tmp_path / "huge.jpg"
    with open(path, "wb") as handle:
        handle.truncate(images.UPLOAD_LIMIT_BYTES + 1)  # sparse: costs no disk
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("an oversized file was read"))
    with pytest.raises(ImageError, match=r"huge\.jpg is 25\.1 MB; the limit is 25 MB"):
        load_image_file(path)


def test_heic_is_refused_with_conversion_advice():
    heic = struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic" + b"\x00" * 64
    message = refusal(heic, "IMG_0001.HEIC")
    assert message.startswith("IMG_0001.HEIC is a HEIC/HEIF photo") and "Convert it to JPEG or PNG" in message


def test_heif_with_generic_major_brand_is_refused_too():
    heif = struct.pack(">I", 28) + b"ftypmif1" + b"\x00\x00\x00\x00" + b"mif1heixmiaf" + b"\x00" * 64
    assert "HEIC/HEIF" in refusal(heif, "camera.heif")


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow build has no AVIF decoder")
def test_avif_loads_with_pillows_decoder():
    loaded = load_image(encode(Image.new("RGB", (48, 40), (200, 30, 30)), "AVIF", quality=95), "photo.avif")
    assert loaded.format == "AVIF" and loaded.image.size == (48, 40)
    assert np.abs(np.asarray(loaded.image, dtype=int)[20, 20] - (200, 30, 30)).max() <= 6


def test_missing_file_and_folder_are_refused_by_name(tmp_path):
    with pytest.raises(ImageError, match="nowhere.png does not exist"):
        load_image_file(tmp_path / "nowhere.png")
    with pytest.raises(ImageError, match="is a folder"):
        load_image_file(tmp_path)


def test_next_good_image_works_after_every_refusal():
    good = encode(Image.new("RGB", (64, 48), (10, 200, 30)), "PNG")
    bad_files = [b"", b"<html></html>", encode(noise(50, 50), "JPEG")[:300], png_declaring(30000, 30000)]
    for bad in bad_files:
        with pytest.raises(ImageError):
            load_image(bad, "bad.jpg")
        loaded = load_image(good, "good.png")
        assert loaded.image.getpixel((5, 5)) == (10, 200, 30) and loaded.notes == []


# --- conversions ---------------------------------------------------------------------------------------

def test_plain_rgb_png_comes_back_unchanged_with_its_hash():
    picture = noise(50, 40, seed=3)
    data = encode(picture, "PNG")
    loaded = load_image(data, "noise.png")
    assert loaded.image.mode == "RGB" and loaded.image.size == (50, 40)
    assert np.array_equal(np.asarray(loaded.image), np.asarray(picture))
    assert loaded.sha256 == hashlib.sha256(data).hexdigest()
    assert (loaded.format, loaded.frames, loaded.original_size, loaded.notes) == ("PNG", 1, (50, 40), [])
    loaded.image.copy()  # the returned picture is independent of the (closed) file


def test_16_bit_png_is_scaled_to_8_bits():
    values = np.array([[0, 257 * 100], [65535, 257 * 7]], dtype=np.uint16)
    data = encode(Image.fromarray(values).resize((64, 64), Image.Resampling.NEAREST), "PNG")
    loaded = load_image(data, "depth.png")
    assert loaded.original_mode in ("I;16", "I")
    pixels = np.asarray(loaded.image)
    assert pixels.shape == (64, 64, 3)
    assert [tuple(pixels[y, x]) for y, x in ((0, 0), (0, 40), (40, 0), (40, 40))] == \
           [(0, 0, 0), (100, 100, 100), (255, 255, 255), (7, 7, 7)]
    assert any("16-bit" in note for note in loaded.notes)


def test_32_bit_integer_tiff_within_16_bit_range_is_scaled_like_16_bit():
    values = np.full((40, 40), 257 * 60, dtype=np.int32)
    loaded = load_image(encode(Image.fromarray(values, mode="I"), "TIFF"), "scan.tif")
    assert loaded.original_mode == "I" and loaded.image.getpixel((3, 3)) == (60, 60, 60)


def test_cmyk_jpeg_becomes_rgb():
    cyan = Image.new("CMYK", (48, 48), (255, 0, 0, 0))
    loaded = load_image(encode(cyan, "JPEG", quality=95), "print.jpg")
    assert loaded.original_mode == "CMYK" and loaded.image.mode == "RGB"
    assert np.abs(np.asarray(loaded.image, dtype=int)[24, 24] - (0, 255, 255)).max() <= 4
    assert any("CMYK" in note for note in loaded.notes)


def test_palette_with_transparency_is_composited_on_white():
    palette_image = Image.new("P", (40, 40), 1)
    palette_image.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    palette_image.paste(0, (0, 0, 20, 40))  # left half red, right half index 1 = transparent
    for fmt, name in (("PNG", "logo.png"), ("GIF", "logo.gif")):
        loaded = load_image(encode(palette_image, fmt, transparency=1), name)
        assert loaded.image.getpixel((5, 20)) == (255, 0, 0)
        assert loaded.image.getpixel((30, 20)) == (255, 255, 255)
        assert "Transparent areas are shown on white." in loaded.notes


def test_la_and_rgba_are_composited_on_white():
    la = Image.new("LA", (40, 40), (0, 0))
    la.paste((50, 255), (0, 0, 20, 40))
    la.paste((0, 128), (20, 0, 40, 40))
    loaded = load_image(encode(la, "PNG"), "grey.png")
    assert loaded.image.getpixel((5, 5)) == (50, 50, 50)
    assert loaded.image.getpixel((30, 5)) == (127, 127, 127)  # half-transparent black over white

    rgba = Image.new("RGBA", (40, 40), (255, 0, 0, 128))
    rgba.paste((0, 0, 255, 0), (0, 0, 10, 10))
    loaded = load_image(encode(rgba, "PNG"), "overlay.png")
    assert loaded.image.getpixel((30, 30)) == (255, 127, 127)
    assert loaded.image.getpixel((5, 5)) == (255, 255, 255)
    assert "Transparent areas are shown on white." in loaded.notes


def test_opaque_rgba_gets_no_transparency_note():
    loaded = load_image(encode(Image.new("RGBA", (40, 40), (9, 8, 7, 255)), "PNG"), "opaque.png")
    assert loaded.image.getpixel((1, 1)) == (9, 8, 7) and loaded.notes == []


def test_greyscale_and_bilevel_become_grey_rgb():
    assert load_image(encode(Image.new("L", (40, 40), 77), "PNG"), "g.png").image.getpixel((3, 3)) == (77, 77, 77)
    bilevel = Image.new("1", (40, 40), 1)
    assert load_image(encode(bilevel, "BMP"), "b.bmp").image.getpixel((3, 3)) == (255, 255, 255)


@pytest.mark.parametrize("orientation, block_centre", [(6, (31, 8)), (8, (8, 51))])
def test_exif_orientation_is_applied(orientation, block_centre):
    """Stored 40 high x 60 wide with a green block at the top-left; orientation 6 means 'turn clockwise'
    to view (the block goes top-right), 8 'turn anticlockwise' (bottom-left); width and height swap."""
    stored = Image.new("RGB", (60, 40), (200, 200, 200))
    stored.paste((0, 200, 0), (0, 0, 16, 16))
    exif = Image.Exif()
    exif[0x0112] = orientation
    loaded = load_image(encode(stored, "JPEG", quality=95, exif=exif.tobytes()), "phone.jpg")
    assert loaded.image.size == loaded.original_size == (40, 60)
    x, y = block_centre
    green = np.asarray(loaded.image, dtype=int)[y, x]
    assert np.abs(green - (0, 200, 0)).max() <= 6
    assert np.abs(np.asarray(loaded.image, dtype=int)[30, 20] - (200, 200, 200)).max() <= 6
    assert any("orientation" in note for note in loaded.notes)


def test_animated_gif_uses_first_frame_and_says_so():
    frames = [Image.new("RGB", (40, 40), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    loaded = load_image(data, "spin.gif")
    assert loaded.frames == 3 and loaded.image.getpixel((10, 10)) == (255, 0, 0)
    assert "The file has 3 frames (animated or multi-page); the first frame is used." in loaded.notes


def test_multipage_tiff_uses_first_page_and_says_so():
    pages = [Image.new("RGB", (40, 30), (0, 0, 250)), Image.new("RGB", (40, 30), (250, 250, 0))]
    loaded = load_image(encode(pages[0], "TIFF", save_all=True, append_images=pages[1:]), "scan.tiff")
    assert loaded.frames == 2 and loaded.image.getpixel((3, 3)) == (0, 0, 250)
    assert "The file has 2 pages (animated or multi-page); the first page is used." in loaded.notes


def test_webp_and_bmp_load():
    for fmt in ("WEBP", "BMP"):
        loaded = load_image(encode(Image.new("RGB", (40, 40), (30, 60, 90)), fmt, **({"lossless": True}
                                                                                 if fmt == "WEBP" else {})), "x")
        assert loaded.format == fmt and loaded.image.getpixel((9, 9)) == (30, 60, 90)


# --- small, elongated and large pictures ---------------------------------------------------------------

def test_one_pixel_image_loads_with_tiny_note():
    loaded = load_image(encode(Image.new("RGB", (1, 1), (1, 2, 3)), "PNG"), "dot.png")
    assert loaded.image.size == (1, 1) and loaded.image.getpixel((0, 0)) == (1, 2, 3)
    assert len(loaded.notes) == 1 and loaded.notes[0].startswith("The picture is tiny (1x1 pixels)")


def test_extreme_aspect_ratio_loads_with_elongated_note():
    loaded = load_image(encode(Image.new("RGB", (10000, 20), (0, 90, 0)), "PNG"), "banner.png")
    assert loaded.original_size == (10000, 20)
    assert max(loaded.image.size) == images.MAX_WORKING_SIDE and loaded.image.getpixel((100, 2)) == (0, 90, 0)
    assert any("very elongated (10000x20)" in note and "keeps only 0% of it" in note for note in loaded.notes)
    assert any(note.startswith("The picture is tiny (10000x20") for note in loaded.notes)
    moderate = load_image(encode(Image.new("RGB", (300, 100)), "PNG"), "wide.png")
    assert moderate.notes == []  # 3:1 still keeps a third


def test_large_photo_is_shrunk_to_working_size_with_note(monkeypatch):
    monkeypatch.setattr(images, "MAX_WORKING_SIDE", 256)  # the same logic as at 2048, on a cheap picture
    photo = Image.new("RGB", (1200, 800), (30, 120, 200))
    photo.paste((250, 250, 0), (0, 0, 600, 800))
    loaded = load_image(encode(photo, "JPEG", quality=90), "big.jpg")
    assert loaded.original_size == (1200, 800) and loaded.image.size == (256, 171)
    assert any(note.startswith("Large picture (1200x800) shrunk to 256x171") for note in loaded.notes)
    assert np.abs(np.asarray(loaded.image, dtype=int)[80, 40] - (250, 250, 0)).max() <= 6
    assert np.abs(np.asarray(loaded.image, dtype=int)[80, 220] - (30, 120, 200)).max() <= 6


def test_working_side_holds_any_phone_photo_at_model_resolution():
    assert images.MAX_WORKING_SIDE == 2048 and images.MAX_PIXELS == 50_000_000


def test_same_bytes_give_the_same_pixels():
    data = encode(noise(300, 200, seed=5), "JPEG")
    first, second = load_image(data, "a.jpg"), load_image(data, "b.jpg")
    assert first.sha256 == second.sha256 and np.array_equal(np.asarray(first.image), np.asarray(second.image))


def test_load_image_file_reads_a_good_file(tmp_path):
    path = tmp_path / "cat.png"
    path.write_bytes(encode(Image.new("RGB", (40, 40), (4, 5, 6)), "PNG"))
    loaded = load_image_file(path)
    assert loaded.filename == str(path) and loaded.image.getpixel((0, 0)) == (4, 5, 6)


# --- server settings -----------------------------------------------------------------------------------

def test_server_config_is_safe_and_offline():
    config = tomllib.loads(CONFIG.read_text())
    assert config["server"]["maxUploadSize"] == 25
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["headless"] is True
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] == "none"
    assert config["client"]["showErrorLinks"] is False


def test_loader_uses_the_servers_upload_limit(tmp_path):
    config = tomllib.loads(CONFIG.read_text())
    assert images.UPLOAD_LIMIT_MB == config["server"]["maxUploadSize"]
    assert images.UPLOAD_LIMIT_BYTES == config["server"]["maxUploadSize"] * 2**20
    other = tmp_path / "config.toml"
    other.write_text("[server]\nmaxUploadSize = 7\n")
    assert images._configured_upload_limit_mb(other) == 7
    assert images._configured_upload_limit_mb(tmp_path / "absent.toml") == images.STREAMLIT_DEFAULT_UPLOAD_MB == 200


def test_large_transparent_png_is_reduced_then_composited(monkeypatch):
    monkeypatch.setattr(images, "MAX_WORKING_SIDE", 256)
    picture = Image.new("RGBA", (1100, 550), (0, 0, 255, 255))
    picture.paste((0, 0, 0, 0), (0, 0, 550, 550))  # left half fully transparent
    loaded = load_image(encode(picture, "PNG"), "poster.png")
    assert loaded.original_size == (1100, 550) and loaded.image.size == (256, 128)
    assert loaded.image.getpixel((30, 60)) == (255, 255, 255) and loaded.image.getpixel((220, 60)) == (0, 0, 255)
    assert "Transparent areas are shown on white." in loaded.notes


def test_exif_orientation_applies_to_a_reduced_tiff(monkeypatch):
    """TIFF keeps its orientation in a tag, not in EXIF bytes: still applied after the picture is reduced."""
    monkeypatch.setattr(images, "MAX_WORKING_SIDE", 64)
    stored = Image.new("RGB", (300, 200), (200, 200, 200))
    stored.paste((0, 200, 0), (0, 0, 80, 80))
    exif = Image.Exif()
    exif[0x0112] = 6
    loaded = load_image(encode(stored, "TIFF", exif=exif), "scan.tif")
    assert loaded.original_size == (200, 300) and loaded.image.size == (43, 64)
    assert loaded.image.getpixel((38, 4)) == (0, 200, 0) and loaded.image.getpixel((5, 60)) == (200, 200, 200)
