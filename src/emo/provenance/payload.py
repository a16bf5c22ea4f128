"""The watermark payload: the emo version and a per-video id, with a CRC-16, as 48 bits."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from emo.errors import InputError

__all__ = ["PAYLOAD_BITS", "Payload", "video_id_from"]

_VERSION_FIELDS = (3, 5, 4)  # major, minor, patch bits
_ID_BITS = 20
_CRC_BITS = 16
_CRC_POLY = 0x1021  # CRC-16/CCITT (x^16 + x^12 + x^5 + 1)
PAYLOAD_BITS = sum(_VERSION_FIELDS) + _ID_BITS + _CRC_BITS  # 48


def _crc16(value: int, nbits: int) -> int:
    """CRC-16/CCITT (initial value 0xFFFF) of the ``nbits`` low bits of ``value``, MSB first."""
    reg = 0xFFFF
    for i in range(nbits - 1, -1, -1):
        top = ((reg >> 15) & 1) ^ ((value >> i) & 1)
        reg = (reg << 1) & 0xFFFF
        if top:
            reg ^= _CRC_POLY
    return reg


def _parse_version(version: str) -> tuple[int, int, int]:
    match = re.match(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
    if match is None:
        raise InputError(f"version {version!r} does not start with numbers like '1.2.3'")
    parts = tuple(int(p) if p is not None else 0 for p in match.groups())
    return parts[0], parts[1], parts[2]


@dataclass(frozen=True)
class Payload:
    """What the watermark carries: the emo version that made the video and a per-video id.

    Attributes
    ----------
    version
        ``"major.minor.patch"``; the fields are stored in 3, 5 and 4 bits, so values
        above 7, 31 and 15 are stored as those maxima.
    video_id
        A 20-bit number (0 ... 1,048,575) naming the video; the pipeline derives it
        from the inputs and the seed, so it is a fingerprint to match a file against a
        generation log, not a unique serial number.
    """

    version: str
    video_id: int

    def __post_init__(self) -> None:
        if not isinstance(self.video_id, int) or not 0 <= self.video_id < (1 << _ID_BITS):
            raise InputError(
                f"video_id must be an integer in [0, {(1 << _ID_BITS) - 1}], got {self.video_id!r}"
            )
        _parse_version(self.version)

    def to_bits(self) -> list[int]:
        """The 48 payload bits (0/1), most significant first: version, id, CRC-16."""
        fields = _parse_version(self.version)
        value = 0
        for number, width in zip(fields, _VERSION_FIELDS, strict=True):
            value = (value << width) | min(number, (1 << width) - 1)
        value = (value << _ID_BITS) | self.video_id
        data_bits = PAYLOAD_BITS - _CRC_BITS
        value = (value << _CRC_BITS) | _crc16(value, data_bits)
        return [(value >> i) & 1 for i in range(PAYLOAD_BITS - 1, -1, -1)]

    @classmethod
    def from_bits(cls, bits: list[int]) -> Payload | None:
        """Decode 48 bits; ``None`` when the CRC does not match (not a valid payload)."""
        if len(bits) != PAYLOAD_BITS:
            raise InputError(f"a payload has {PAYLOAD_BITS} bits, got {len(bits)}")
        value = 0
        for bit in bits:
            value = (value << 1) | (1 if bit else 0)
        crc = value & ((1 << _CRC_BITS) - 1)
        data = value >> _CRC_BITS
        if _crc16(data, PAYLOAD_BITS - _CRC_BITS) != crc:
            return None
        video_id = data & ((1 << _ID_BITS) - 1)
        data >>= _ID_BITS
        numbers = []
        for width in reversed(_VERSION_FIELDS):
            numbers.append(data & ((1 << width) - 1))
            data >>= width
        major, minor, patch = reversed(numbers)
        return cls(version=f"{major}.{minor}.{patch}", video_id=video_id)


def video_id_from(*parts: bytes | str | int | float) -> int:
    """A 20-bit video id: a hash (BLAKE2b) of ``parts`` (inputs, seed, settings)."""
    digest = hashlib.blake2b(digest_size=8)
    for part in parts:
        data = part if isinstance(part, bytes) else repr(part).encode()
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return int.from_bytes(digest.digest(), "little") & ((1 << _ID_BITS) - 1)
