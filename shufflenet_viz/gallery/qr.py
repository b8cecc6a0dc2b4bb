"""The join link as a QR code for the projector."""

from __future__ import annotations

import io

import qrcode
from qrcode.image.pil import PilImage


def qr_png(text: str, box_px: int = 10) -> bytes:
    """A PNG of `text` as a QR code (medium error correction, the standard 4-module quiet zone)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_px, border=4)
    code.add_data(text)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image(image_factory=PilImage).save(buffer)
    return buffer.getvalue()
