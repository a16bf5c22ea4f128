"""Image dimensions from the first bytes of a file, without decoding it.

Used to refuse an image too large to be a sensible portrait (:mod:`emo.limits`)
before a decoder allocates width x height x 4 bytes. Knows PNG, JPEG, GIF, BMP and
WebP; other formats return ``None`` and are checked after decoding.
"""

from __future__ import annotations

import io
import os
import struct
from typing import BinaryIO

__all__ = ["image_dimensions"]

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_SCAN_LIMIT = 1 << 20  # SOF comes before the image data; EXIF thumbnails fit in 64 KB


def _png(head: bytes) -> tuple[int, int] | None:
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return int(width), int(height)
    return None


def _gif(head: bytes) -> tuple[int, int] | None:
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return int(width), int(height)
    return None


def _bmp(head: bytes) -> tuple[int, int] | None:
    if head[:2] == b"BM" and len(head) >= 26:
        size = struct.unpack("<I", head[14:18])[0]
        if size == 12:
            width, height = struct.unpack("<HH", head[18:22])
        else:
            width, height = struct.unpack("<ii", head[18:26])
        return abs(int(width)), abs(int(height))
    return None


def _webp(head: bytes) -> tuple[int, int] | None:
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP" or len(head) < 30:
        return None
    chunk = head[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    return None


def _jpeg(handle: BinaryIO) -> tuple[int, int] | None:
    read = handle.read
    if read(2) != b"\xff\xd8":
        return None
    consumed = 2
    while consumed < _JPEG_SCAN_LIMIT:
        byte = read(1)
        while byte == b"\xff":  # fill bytes before a marker
            byte = read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            consumed += 2
            continue
        raw = read(2)
        if len(raw) < 2:
            return None
        length = struct.unpack(">H", raw)[0]
        if marker in _JPEG_SOF:
            data = read(5)
            if len(data) < 5:
                return None
            height, width = struct.unpack(">HH", data[1:5])
            return int(width), int(height)
        if marker == 0xDA or length < 2:  # image data before any frame header: give up
            return None
        handle.seek(length - 2, os.SEEK_CUR)
        consumed += length + 2
    return None


def image_dimensions(source: str | os.PathLike[str] | bytes) -> tuple[int, int] | None:
    """``(width, height)`` from an image file's header, or ``None`` if the format is not known.

    Parameters
    ----------
    source
        A path, or the file's bytes.

    Returns
    -------
    tuple of int or None
        The size the header states; the file is not decoded nor checked otherwise.
    """
    handle: BinaryIO
    if isinstance(source, (bytes, bytearray)):
        handle = io.BytesIO(bytes(source))
    else:
        try:
            handle = open(source, "rb")  # noqa: SIM115 - closed by the with below
        except OSError:
            return None
    with handle:
        head = handle.read(32)
        for sniff in (_png, _gif, _bmp, _webp):
            found = sniff(head)
            if found is not None:
                return found
        handle.seek(0)
        return _jpeg(handle)
