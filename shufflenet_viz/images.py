"""Turning a user's file into an upright RGB picture: the one image-loading path of the app and the CLI.

Every file is untrusted. It is refused with a message the user can act on (`ImageError`) when it is
empty, larger than the upload limit, not an image, damaged, in a format this app does not read (HEIC),
or declares more pixels than `MAX_PIXELS` (checked from the header, before any pixel is decoded).
What is accepted comes back upright (EXIF orientation applied), in RGB (16-bit, CMYK, palette and
transparent images converted; transparency composited on white), first frame only, at most
`MAX_WORKING_SIDE` pixels on its long side, with notes that tell the user what was done and when the
picture is too small or too elongated for the models to say much.

Pillow's process-wide settings (`Image.MAX_IMAGE_PIXELS`, `ImageFile.LOAD_TRUNCATED_IMAGES`) are left as
they are: our own, lower pixel limit is applied per call, so other code in the process is unaffected.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import struct
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

# The upload limit lives in one place, the Streamlit server's config, so the browser's refusal and
# ours state the same number. Without that file Streamlit enforces its own default, 200 MB.
STREAMLIT_CONFIG = Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml"
STREAMLIT_DEFAULT_UPLOAD_MB = 200


def _configured_upload_limit_mb(config_path: Path = STREAMLIT_CONFIG) -> int:
    """`server.maxUploadSize` from the app's Streamlit config (megabytes), or Streamlit's default."""
    try:
        config = tomllib.loads(config_path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return STREAMLIT_DEFAULT_UPLOAD_MB
    return int(config.get("server", {}).get("maxUploadSize", STREAMLIT_DEFAULT_UPLOAD_MB))


UPLOAD_LIMIT_MB = _configured_upload_limit_mb()
UPLOAD_LIMIT_BYTES = UPLOAD_LIMIT_MB * 1024 * 1024  # Streamlit counts megabytes of 2**20 bytes

# 50 megapixels holds any phone or camera photo; decoding it takes ~150 MB, and many sessions share
# the server. A file declaring more is refused before its pixels are decoded.
MAX_PIXELS = 50_000_000
# The models look at 32x32 (CIFAR) to 224x224 (ImageNet) pixels; keeping more only costs memory and
# time for every page that draws or crops the picture.
MAX_WORKING_SIDE = 2048
# Below this the models, trained on 32x32 CIFAR images, have almost nothing to go on.
TINY_SIDE = 32
# The centre square the models see keeps shorter/longer of the picture; under a third is "little".
ELONGATED_KEEPS = 1 / 3

# Only these decoders ever see a user's bytes (Pillow has ~40 plugins; some call external programs).
# Multi-picture JPEGs from cameras (MPO) come through the JPEG plugin.
READABLE_FORMATS = ("JPEG", "PNG", "WEBP", "AVIF", "BMP", "GIF", "TIFF")
READABLE_NAMES = "JPEG, PNG, WebP, AVIF, BMP, GIF or TIFF"
USE_INSTEAD = f"Use a {READABLE_NAMES} file."

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}
AVIF_BRANDS = {b"avif", b"avis"}
WHITE = (255, 255, 255)


class ImageError(ValueError):
    """A file that cannot be used as a picture; the message says why and what to do, for the user."""


@dataclass(frozen=True)
class LoadedImage:
    """An accepted picture: upright RGB, fully decoded, with what was done to it in plain words."""

    image: Image.Image
    sha256: str  # of the file's bytes: the key for everything computed from this picture
    notes: list[str] = field(default_factory=list)
    filename: str = ""
    format: str = ""  # Pillow's name for the file format, e.g. "JPEG"
    frames: int = 1  # frames or pages in the file; only the first is used
    original_size: tuple[int, int] = (0, 0)  # upright width x height of the first frame as stored
    original_mode: str = "RGB"  # Pillow mode as stored, e.g. "I;16", "CMYK", "P"


def load_image_file(path: str | Path) -> LoadedImage:
    """`load_image` for a file on disk (the command line); unreadable or missing files raise ImageError."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageError(f"{path} does not exist: check the path.") from None
    except OSError as error:
        raise ImageError(f"{path} cannot be read ({error.strerror or error}).") from None
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image file. {USE_INSTEAD}")
    if size > UPLOAD_LIMIT_BYTES:  # refuse before reading it into memory
        raise ImageError(_too_large_message(str(path), size))
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageError(f"{path} cannot be read ({error.strerror or error}).") from None
    return load_image(data, str(path))


def load_image(data: bytes, filename: str = "") -> LoadedImage:
    """Decode untrusted bytes into an upright RGB picture with notes, or raise ImageError saying why not."""
    name = filename or "The file"
    if not data:
        raise ImageError(f"{name} is empty (0 bytes). {USE_INSTEAD}")
    if len(data) > UPLOAD_LIMIT_BYTES:
        raise ImageError(_too_large_message(name, len(data)))
    _refuse_known_unreadable(data, name)
    if data.startswith(PNG_SIGNATURE):
        _check_png_chunks(data, name)

    try:
        source = Image.open(io.BytesIO(data), formats=READABLE_FORMATS)
    except Image.DecompressionBombError as error:  # Pillow's own, higher limit fired first
        raise ImageError(_too_many_pixels_message(name, _pixels_in_bomb_error(error))) from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image Pillow can read{_looks_like(data)}. {USE_INSTEAD}") from None
    except Exception as error:  # a malformed header surfaces as any of OSError, SyntaxError, struct.error...
        raise ImageError(_damaged_message(name, error)) from None

    with source:
        width, height = source.size
        if width < 1 or height < 1:
            raise ImageError(f"{name} declares an image of {width}x{height} pixels. {USE_INSTEAD}")
        if width * height > MAX_PIXELS:
            raise ImageError(_too_many_pixels_message(name, width * height, (width, height)))
        try:
            frames = int(getattr(source, "n_frames", 1))
            source.seek(0)
            _jpeg_draft(source)
            source.load()
        except Exception as error:  # truncated or corrupt pixel data
            raise ImageError(_damaged_message(name, error)) from None
        orientation = _orientation(source)
        working = _reduced(source)  # before the copies that turning and converting make
        if orientation in UPRIGHT:
            working = working.transpose(UPRIGHT[orientation])
        rgb, conversion_notes = _to_rgb(working, name)
        if rgb is source:
            rgb = source.copy()  # the file's image is closed on leaving this block
        file_format, original_mode = source.format or "", source.mode
        stored_size = _stored_upright_size((width, height), orientation)

    notes = []
    if frames > 1:
        kind = "page" if file_format == "TIFF" else "frame"
        notes.append(f"The file has {frames} {kind}s (animated or multi-page); the first {kind} is used.")
    if orientation in UPRIGHT:
        notes.append("Turned upright as the photo's orientation tag (EXIF) says.")
    notes.extend(conversion_notes)
    rgb, downscale_note = _limit_working_size(rgb, stored_size)
    if downscale_note:
        notes.append(downscale_note)
    notes.extend(_content_notes(stored_size))
    return LoadedImage(image=rgb, sha256=hashlib.sha256(data).hexdigest(), notes=notes, filename=filename,
                       format=file_format, frames=frames, original_size=stored_size, original_mode=original_mode)


# --- refusals -------------------------------------------------------------------------------------------

def _too_large_message(name: str, size: int) -> str:
    megabytes = math.ceil(size / 2**20 * 10) / 10  # rounded up, so a file just over the limit never reads as at it
    return (f"{name} is {megabytes:.1f} MB; the limit is {UPLOAD_LIMIT_MB} MB. "
            f"Save a smaller copy (e.g. a JPEG at most 4000 pixels wide) and try again.")


def _too_many_pixels_message(name: str, pixels: int | None, size: tuple[int, int] | None = None) -> str:
    declared = f"{size[0]}x{size[1]} pixels" if size else (
        f"{pixels / 1e6:.0f} megapixels" if pixels else "more pixels than Pillow allows")
    return (f"{name} declares an image of {declared}; the limit is {MAX_PIXELS // 1_000_000} megapixels. "
            f"It was not decoded. Resize it (e.g. to 4000 pixels wide) and try again.")


def _pixels_in_bomb_error(error: Exception) -> int | None:
    match = re.search(r"\((\d+) pixels\)", str(error))
    return int(match.group(1)) if match else None


def _damaged_message(name: str, error: Exception) -> str:
    reason = str(error).split("\n")[0][:120] or type(error).__name__
    return f"{name} looks damaged or incomplete and cannot be decoded ({reason}). " \
           f"Open it in a photo viewer and save it again, or {USE_INSTEAD[0].lower()}{USE_INSTEAD[1:]}"


def _ftyp_brands(data: bytes) -> set[bytes]:
    """Major and compatible brands of an ISO media file (HEIF, AVIF, MP4), empty for anything else."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return set()
    box_size = struct.unpack(">I", data[:4])[0]
    end = min(max(box_size, 16), len(data), 4096)
    brands = {data[8:12]}
    brands.update(data[i:i + 4] for i in range(16, end - 3, 4))
    return brands


def _refuse_known_unreadable(data: bytes, name: str) -> None:
    """Formats users often have that this app does not decode, with a specific message."""
    brands = _ftyp_brands(data)
    if brands & HEIF_BRANDS and not brands & AVIF_BRANDS:
        raise ImageError(f"{name} is a HEIC/HEIF photo (the iPhone default), which this app cannot decode. "
                         f"Convert it to JPEG or PNG (on an iPhone: Settings > Camera > Formats > "
                         f"Most Compatible, or export/share it as JPEG) and upload that.")


def _looks_like(data: bytes) -> str:
    """What the bytes seem to be instead of an image, as ' (it looks like ...)', or ''."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    kinds = [(b"<!doctype html", "an HTML web page"), (b"<html", "an HTML web page"), (b"<svg", "an SVG drawing"),
             (b"%pdf", "a PDF document"), (b"pk\x03\x04", "a ZIP archive or Office document"),
             (b"{", "JSON or other text")]
    for prefix, kind in kinds:
        if head.startswith(prefix):
            return f" (it looks like {kind})"
    if head.startswith(b"<?xml"):
        return " (it looks like an SVG drawing)" if b"<svg" in data[:4096].lower() else " (it looks like XML)"
    if _ftyp_brands(data):
        return " (it looks like a video or an ISO media file)"
    try:
        text = data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return ""
    printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
    return " (it looks like text)" if printable >= 0.95 * max(len(text), 1) else ""


def _check_png_chunks(data: bytes, name: str) -> None:
    """Verify every chunk's CRC: Pillow does not check those of image data (IDAT) and would show garbage."""
    position = len(PNG_SIGNATURE)
    while position + 12 <= len(data):
        length, chunk_type = struct.unpack(">I4s", data[position:position + 8])
        end = position + 8 + length
        if end + 4 > len(data):
            raise ImageError(f"{name} is an incomplete PNG (cut off in its {chunk_type.decode('latin-1')!r} "
                             f"chunk). Download or export it again.")
        expected = struct.unpack(">I", data[end:end + 4])[0]
        if zlib.crc32(data[position + 4:end]) != expected:
            raise ImageError(f"{name} is a damaged PNG (checksum error in its {chunk_type.decode('latin-1')!r} "
                             f"chunk). Download or export it again, or {USE_INSTEAD[0].lower()}{USE_INSTEAD[1:]}")
        if chunk_type == b"IEND":
            return
        position = end + 4
    raise ImageError(f"{name} is an incomplete PNG (it ends before its last chunk). Download or export it again.")


# --- decoding ---------------------------------------------------------------------------------------------

def _jpeg_draft(source: Image.Image) -> None:
    """Let JPEG decode at 1/2, 1/4 or 1/8 scale when the full size is far above what we keep."""
    width, height = source.size
    scale = MAX_WORKING_SIDE / max(width, height)
    if scale < 1 and source.format in ("JPEG", "MPO"):
        source.draft(None, (max(1, round(width * scale)), max(1, round(height * scale))))


# EXIF orientation -> the transposition that makes the picture upright (as ImageOps.exif_transpose does;
# applied here to the reduced picture, whose EXIF may be gone).
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}
# Modes whose pixels can be averaged (not palette indices or bilevel) and that Image.reduce supports.
REDUCIBLE_MODES = {"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "I", "F"}


def _reduced(image: Image.Image) -> Image.Image:
    """Shrink by a whole factor (box average) while the picture stays at least MAX_WORKING_SIDE on its long
    side: a 50-megapixel PNG is then converted at a quarter of the memory."""
    factor = max(image.size) // MAX_WORKING_SIDE
    if factor < 2 or image.mode not in REDUCIBLE_MODES:
        return image
    return image.reduce(factor)


def _orientation(source: Image.Image) -> int:
    """The EXIF orientation tag (1 = as stored); unreadable EXIF counts as 1."""
    try:
        return int(source.getexif().get(0x0112, 1))
    except Exception:  # malformed EXIF must not cost the user the picture
        return 1


def _stored_upright_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def _to_rgb(image: Image.Image, name: str) -> tuple[Image.Image, list[str]]:
    """Any Pillow mode as 8-bit RGB, transparency composited on white; notes for lossy conversions."""
    try:
        return _converted_to_rgb(image)
    except (ValueError, OSError) as error:  # a mode Pillow cannot convert, e.g. "La"
        raise ImageError(f"{name} stores its colours as {image.mode!r}, which this app cannot convert to RGB "
                         f"({error}). Save it as an ordinary RGB JPEG or PNG.") from None


def _converted_to_rgb(image: Image.Image) -> tuple[Image.Image, list[str]]:
    mode = image.mode
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return _high_depth_to_rgb(image), ["16-bit (or deeper) greyscale reduced to 8 bits for display and the models."]
    if mode == "CMYK":
        return image.convert("RGB"), ["CMYK (print) colours converted to RGB; colours may look slightly different."]
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in ("P", "L", "RGB", "1")
                                                                and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        composited = Image.alpha_composite(background, rgba).convert("RGB")
        transparent = rgba.getchannel("A").getextrema()[0] < 255
        return composited, (["Transparent areas are shown on white."] if transparent else [])
    if mode == "RGB":
        return image, []
    return image.convert("RGB"), []


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit (and 32-bit integer / float) greyscale to 8 bits: 16-bit ranges scale by 1/257, floats in
    [0, 1] by 255; anything wider is stretched from its own minimum to maximum."""
    values = np.asarray(image, dtype=np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if image.mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255
    elif low >= 0 and high <= 65535:
        scaled = values / 257
    else:
        scaled = (values - low) * (255 / (high - low)) if high > low else np.zeros_like(values)
    grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def _limit_working_size(image: Image.Image, stored_size: tuple[int, int]) -> tuple[Image.Image, str]:
    """Shrink to MAX_WORKING_SIDE on the long side (JPEG may already be decoded smaller)."""
    if max(image.size) > MAX_WORKING_SIDE:
        scale = MAX_WORKING_SIDE / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if image.size != stored_size:
        return image, (f"Large picture ({stored_size[0]}x{stored_size[1]}) shrunk to {image.width}x{image.height} "
                       f"to save time and memory; the models look at 32x32 to 224x224 pixels anyway.")
    return image, ""


def _content_notes(size: tuple[int, int]) -> list[str]:
    """Warnings about pictures the models cannot say much about."""
    width, height = size
    notes = []
    if min(width, height) < TINY_SIDE:
        notes.append(f"The picture is tiny ({width}x{height} pixels): the models have very little to go on, "
                     f"so treat their answer with caution.")
    keeps = min(width, height) / max(width, height)
    if keeps < ELONGATED_KEEPS:
        notes.append(f"The picture is very elongated ({width}x{height}): the centre square the models look at "
                     f"keeps only {keeps:.0%} of it. Crop it around the object for a fairer answer.")
    return notes
