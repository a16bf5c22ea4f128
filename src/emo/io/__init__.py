"""Input and output: images, video reading, video writers.

- :mod:`emo.io.image`: :func:`~emo.io.image.load_image`, :func:`~emo.io.image.crop_and_resize`
- :mod:`emo.io.reader`: :func:`~emo.io.reader.read_video`, :class:`~emo.io.reader.VideoReader`
- :mod:`emo.io.writers`: the video-writer plugins

Names are imported on first use, so ``import emo.io`` is cheap; PyAV is imported
only when a file is actually read or written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emo._lazy import lazy_getattr

if TYPE_CHECKING:
    from emo.io.image import crop_and_resize, load_image
    from emo.io.reader import VideoReader, read_video
    from emo.io.writers import writer_for_path

__all__ = ["VideoReader", "crop_and_resize", "load_image", "read_video", "writer_for_path"]

_LAZY = {
    "VideoReader": "emo.io.reader",
    "crop_and_resize": "emo.io.image",
    "load_image": "emo.io.image",
    "read_video": "emo.io.reader",
    "writer_for_path": "emo.io.writers",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
