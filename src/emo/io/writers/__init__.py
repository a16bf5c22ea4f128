"""Video writers: stream frames (and audio) to MP4, WebM, GIF, PNG frames or memory.

=============  =================================================  =================
name           class                                              picked for
=============  =================================================  =================
``mp4``        :class:`~emo.io.writers.pyav.MP4Writer`            ``.mp4 .m4v``
``webm``       :class:`~emo.io.writers.pyav.WebMWriter`           ``.webm``
``gif``        :class:`~emo.io.writers.pyav.GIFWriter`            ``.gif``
``frames``     :class:`~emo.io.writers.frames.PNGFramesWriter`    a folder
``memory``     :class:`~emo.io.writers.memory.MemoryWriter`       ``"memory"``
=============  =================================================  =================

PyAV is imported only when a file is written.
"""

from __future__ import annotations

import os
from typing import Any

from emo.errors import PluginError, VideoError
from emo.io.writers.base import (
    FileSession,
    FolderSession,
    VideoWriter,
    VideoWriterBase,
    VideoWriterSession,
    WriterSession,
    WrittenVideo,
    as_video_frames,
    fit_audio,
    prepare_audio,
    to_fraction,
)

__all__ = [
    "FileSession",
    "FolderSession",
    "VideoWriter",
    "VideoWriterBase",
    "VideoWriterSession",
    "WriterSession",
    "WrittenVideo",
    "as_video_frames",
    "fit_audio",
    "prepare_audio",
    "resolve_writer",
    "to_fraction",
    "writer_for_path",
]

# Asked first, so a third-party plugin cannot take over a built-in suffix by sorting earlier.
_BUILTIN_ORDER = ("mp4", "webm", "gif", "memory", "frames")


def writer_for_path(path: str | os.PathLike[str] | None) -> Any:
    """Return a writer instance that can write ``path``, asking each registered writer.

    Built-ins are asked first (``mp4``, ``webm``, ``gif``, ``memory``, then ``frames``
    for a suffix-less path), then other plugins in name order. Plugins that fail
    to load are skipped.

    Parameters
    ----------
    path
        The target: ``"out.mp4"``, ``"clip.webm"``, ``"anim.gif"``, ``"frames_dir/"``,
        ``"memory"``.

    Raises
    ------
    VideoError
        If no writer claims the path.
    """
    from emo import plugins

    names = plugins.available("video_writer")
    ordered = [n for n in _BUILTIN_ORDER if n in names] + [
        n for n in names if n not in _BUILTIN_ORDER
    ]
    for name in ordered:
        try:
            writer = plugins.create("video_writer", name)
        except (PluginError, TypeError):
            continue
        try:
            if writer.can_write(path):
                return writer
        except Exception:
            continue
    raise VideoError(
        f"no video writer handles {path!r}; use a .mp4, .webm or .gif file name, a folder for "
        f"PNG frames, or 'memory' (writers: {', '.join(names)})"
    )


def resolve_writer(writer: Any, path: str | os.PathLike[str] | None) -> Any:
    """Turn ``writer`` (``None``, a name, a class or an instance) into a writer instance.

    ``None`` picks one by the path's suffix with :func:`writer_for_path`.
    """
    if writer is None:
        return writer_for_path(path)
    from emo import plugins

    return plugins.create("video_writer", writer)
