"""Video-file writers built on PyAV (FFmpeg): MP4 (H.264 + AAC), WebM (VP9 + Opus), GIF.

Frames are encoded as they arrive, so memory stays bounded by the encoder's
look-ahead, whatever the number of frames. Audio given to ``open`` is encoded
alongside the frames (interleaved); audio given only to ``close`` is muxed in a
second pass that copies the already encoded video packets (no re-encoding).
Both streams start at 0; the audio is trimmed or zero-padded to exactly
``num_frames / fps`` seconds.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from emo.errors import EMOWarning, InputError, VideoError
from emo.io.audio_stream import AudioReader, AudioStream, ResampledAudioStream
from emo.io.writers.base import FileSession, VideoWriterBase, WrittenVideo

__all__ = [
    "GIFWriter",
    "MP4Writer",
    "PyAVWriterBase",
    "WebMWriter",
    "check_codec",
    "check_int_option",
]


def _av() -> Any:
    import av

    return av


def check_codec(name: str, what: str) -> None:
    """Raise :class:`~emo.errors.VideoError` unless this FFmpeg build has encoder ``name``."""
    av = _av()
    try:
        av.codec.Codec(name, "w")
    except Exception:
        raise VideoError(
            f"the FFmpeg inside PyAV {av.__version__} has no {name!r} encoder, needed for {what}; "
            "install a PyAV wheel built with it (`pip install --force-reinstall av`) or pick "
            "another writer (mp4, webm, gif, frames)"
        ) from None


def check_int_option(label: str, value: Any, low: int, high: int) -> None:
    """Raise :class:`~emo.errors.InputError` unless ``value`` is an int in ``[low, high]``.

    A bool is refused: ``True`` is an ``int`` to Python, never a bit rate or a loop count.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{label} must be an integer in [{low}, {high}], got {value!r}")


class _AudioTrack:
    """An audio stream of an output container, fed up to a given time from an audio source."""

    def __init__(self, container: Any, codec: str, rate: int, channels: int, bit_rate: int) -> None:
        self.container = container
        self.rate = rate
        self.channels = 2 if channels == 2 else 1
        self.layout = "stereo" if channels == 2 else "mono"
        self.stream = container.add_stream(codec, rate=rate)
        self.stream.layout = self.layout
        if bit_rate > 0:
            self.stream.bit_rate = bit_rate
        self.reader: AudioReader | None = None
        self.position = 0

    def set_audio(self, source: AudioStream) -> None:
        """Read ``source`` block by block, converted to the stream's rate and layout if needed."""
        if source.sample_rate != self.rate or source.channels != self.channels:
            source = ResampledAudioStream(source, self.rate, self.channels)
        self.reader = AudioReader(source)

    def feed(self, until: int) -> None:
        """Encode and mux samples up to index ``until`` (zero beyond the audio's end)."""
        av = _av()
        step = 4096
        while self.position < until and self.reader is not None:
            end = min(until, self.position + step)
            chunk = self.reader.take(end - self.position)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk), format="fltp", layout=self.layout
            )
            frame.sample_rate = self.rate
            frame.pts = self.position
            frame.time_base = Fraction(1, self.rate)
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            self.position = end

    def flush(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)


class _PyAVSession(FileSession):
    """Streams frames into one PyAV container (see :class:`PyAVWriterBase`)."""

    streams_audio = True

    def __init__(self, writer: PyAVWriterBase, settings: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.writer = writer
        self.settings = settings
        self._containers: list[Any] = []
        self._extra_files: list[Path] = []
        self.pad_width = self.pad_height = 0
        try:
            self._open()
        except BaseException:
            self.abort()
            raise

    def _open(self) -> None:
        av = _av()
        writer = self.writer
        codec, pix_fmt = writer.video_codec_for(self.settings)
        check_codec(codec, f"{writer.name} video")
        if self.audio is not None and writer.audio_codec:
            check_codec(writer.audio_codec, f"{writer.name} audio")
        if pix_fmt in ("yuv420p", "yuv422p") and (self.width % 2 or self.height % 2):
            if self.settings.get("odd_size", "pad") == "error":
                raise InputError(
                    f"{writer.name} with {pix_fmt} needs an even width and height, got "
                    f"{self.width}x{self.height}; resize the frames, or pass odd_size='pad' to "
                    "repeat the last row/column"
                )
            self.pad_width, self.pad_height = self.width % 2, self.height % 2
        try:
            self.container = av.open(
                os.fspath(self.temp_path),
                "w",
                format=writer.container_format,
                options=writer.container_options(self.settings),
            )
        except av.error.FFmpegError as exc:
            raise VideoError(f"cannot create {str(self.target)!r}: {exc}") from exc
        self._containers.append(self.container)
        stream = self.container.add_stream(codec, rate=self.fps)
        stream.width = self.width + self.pad_width
        stream.height = self.height + self.pad_height
        stream.pix_fmt = pix_fmt
        stream.time_base = 1 / self.fps
        stream.codec_context.time_base = 1 / self.fps
        bit_rate, options = writer.video_options(self.settings)
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        stream.options = options
        self.stream = stream
        self.graph = writer.filter_graph(self.settings, stream.width, stream.height, self.fps)
        self.audio_track: _AudioTrack | None = None
        source = self.audio_source()
        if source is not None:
            self.audio_track = self._add_audio(self.container, source.channels, source.sample_rate)
            if self.audio_track is None:  # the format holds no audio (warned)
                self._release_audio()
                self.audio = self.sample_rate = None
            else:
                self.audio_track.set_audio(source)

    def _add_audio(self, container: Any, channels: int, sample_rate: int) -> _AudioTrack | None:
        writer = self.writer
        if not writer.audio_codec:
            warnings.warn(
                f"{writer.name} files hold no audio; the audio is not written to "
                f"{str(self.target)!r} (use mp4 or webm to keep it)",
                EMOWarning,
                stacklevel=5,
            )
            return None
        check_codec(writer.audio_codec, f"{writer.name} audio")
        rate = writer.audio_rate(sample_rate)
        bitrate = int(self.settings.get("audio_bitrate", 0))
        return _AudioTrack(container, writer.audio_codec, rate, channels, bitrate)

    def _write_frames(self, frames: np.ndarray) -> None:
        av = _av()
        if self.pad_width or self.pad_height:
            frames = np.pad(
                frames, ((0, 0), (0, self.pad_height), (0, self.pad_width), (0, 0)), mode="edge"
            )
        if self.num_frames == 0:  # the header is written with the first packet
            self.container.metadata.update(self.metadata)
        try:
            for i, image in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = self.num_frames + i
                frame.time_base = self.stream.codec_context.time_base
                self._encode(frame)
            if self.audio_track is not None:
                count = self.num_frames + len(frames)
                self.audio_track.feed(int(Fraction(count) / self.fps * self.audio_track.rate))
        except av.error.FFmpegError as exc:
            raise VideoError(f"encoding {str(self.target)!r} failed: {exc}") from exc

    def _encode(self, frame: Any) -> None:
        """Encode one frame (``None`` flushes), through the writer's filter graph if any."""
        av = _av()
        if self.graph is None:
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            return
        self.graph.push(frame)
        while True:
            try:
                filtered = self.graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                break
            for packet in self.stream.encode(filtered):
                self.container.mux(packet)
        if frame is None:
            for packet in self.stream.encode(None):
                self.container.mux(packet)

    def _finish(self) -> WrittenVideo:
        av = _av()
        final: Path | None = None
        rate: int | None = None
        try:
            self._encode(None)
            track = self.audio_track
            if track is not None:
                track.feed(self.audio_samples(track.rate))  # trimmed or padded to the video
                track.flush()
                rate = track.rate
            self.container.close()
            if track is None and self.audio is not None and self.sample_rate is not None:
                if not self.writer.audio_codec:
                    self._add_audio(self.container, 1, self.sample_rate)  # warns, adds nothing
                else:
                    # The audio came with close(): remux the encoded video next to it.
                    final, rate = self._remux_with_audio()
        except av.error.FFmpegError as exc:
            raise VideoError(f"finishing {str(self.target)!r} failed: {exc}") from exc
        self.writer.finish_file(final or self.temp_path, self.metadata)
        path = self._publish(final)
        return WrittenVideo(
            path=path,
            num_frames=self.num_frames,
            fps=self.fps,
            width=self.width + self.pad_width,
            height=self.height + self.pad_height,
            sample_rate=rate,
        )

    def _remux_with_audio(self) -> tuple[Path, int | None]:
        """Copy the video packets of the temporary file into a new one next to encoded audio."""
        av = _av()

        final = self.new_temporary()
        self._extra_files.append(final)
        with av.open(os.fspath(self.temp_path), "r") as source:
            in_stream = source.streams.video[0]
            output = av.open(
                os.fspath(final),
                "w",
                format=self.writer.container_format,
                options=self.writer.container_options(self.settings),
            )
            self._containers.append(output)
            output.metadata.update(self.metadata)
            out_stream = output.add_stream_from_template(in_stream)
            audio = self.audio_source()
            assert audio is not None
            track = self._add_audio(output, audio.channels, audio.sample_rate)
            total = 0
            if track is not None:
                track.set_audio(audio)
                total = self.audio_samples(track.rate)
            for packet in source.demux(in_stream):
                if packet.dts is None:
                    continue
                if track is not None and packet.pts is not None:
                    seconds = float(packet.pts * in_stream.time_base)
                    track.feed(min(total, max(0, int(seconds * track.rate))))
                packet.stream = out_stream
                output.mux(packet)
            if track is not None:
                track.feed(total)
                track.flush()
            output.close()
        os.unlink(self.temp_path)
        return final, (track.rate if track is not None else None)

    def _abort(self) -> None:
        for container in self._containers:
            with contextlib.suppress(Exception):
                container.close()
        for extra in self._extra_files:
            extra.unlink(missing_ok=True)
        super()._abort()


class PyAVWriterBase(VideoWriterBase):
    """Shared machinery of the PyAV writers; subclasses set the formats and codecs.

    Attributes
    ----------
    container_format
        FFmpeg muxer name (``"mp4"``).
    video_codec
        FFmpeg encoder name (``"libx264"``).
    audio_codec
        Audio encoder name, or ``""`` when the format holds no audio.
    audio_rates
        Sample rates the audio encoder takes; others are resampled to the first one.
    """

    container_format: ClassVar[str] = ""
    video_codec: ClassVar[str] = ""
    audio_codec: ClassVar[str] = ""
    audio_rates: ClassVar[tuple[int, ...]] = (48000,)

    def video_codec_for(self, settings: dict[str, Any]) -> tuple[str, str]:
        """Return the encoder and pixel format for ``settings``."""
        return self.video_codec, str(settings.get("pix_fmt", "yuv420p"))

    def video_options(self, settings: dict[str, Any]) -> tuple[int | None, dict[str, str]]:
        """Return the bit rate (``None``: encoder default) and encoder options."""
        return None, {}

    def container_options(self, settings: dict[str, Any]) -> dict[str, str]:
        """Return muxer options."""
        return {}

    def filter_graph(self, settings: dict[str, Any], width: int, height: int, fps: Fraction) -> Any:
        """Return a configured PyAV filter graph that rgb24 frames go through, or ``None``."""
        return None

    def finish_file(self, path: Path, metadata: dict[str, str]) -> None:
        """Last touch to the finished temporary file before it is published (default: none)."""

    def audio_rate(self, sample_rate: int) -> int:
        """Return the rate the audio is encoded at: ``sample_rate`` if supported."""
        return sample_rate if sample_rate in self.audio_rates else self.audio_rates[0]

    def open(
        self,
        path: str | os.PathLike[str],
        *,
        fps: Any,
        width: int,
        height: int,
        audio: Any = None,
        sample_rate: int | None = None,
        **options: Any,
    ) -> FileSession:
        """Start streaming a video file; see :meth:`VideoWriterBase.open`.

        Raises
        ------
        VideoError
            If the encoder is missing from this PyAV build or the file cannot be created.
        InputError
            On a bad size, fps, audio or option.
        """
        settings = self.options(options)
        session = _PyAVSession(
            self,
            settings,
            path=path,
            fps=fps,
            width=width,
            height=height,
            audio=audio,
            sample_rate=sample_rate,
        )
        return session


class MP4Writer(PyAVWriterBase):
    """MP4 files: H.264 video (libx264) and AAC audio (registry name ``mp4``).

    Parameters
    ----------
    crf
        Constant rate factor, 0 (lossless) to 51; 18 is visually lossless.
    preset
        x264 speed/size trade-off: ``ultrafast`` ... ``medium`` ... ``veryslow``.
    pix_fmt
        ``"yuv420p"`` (default; plays everywhere), ``"yuv444p"`` (no chroma
        subsampling) or ``"rgb24"`` (libx264rgb; with ``crf=0`` the frames round-trip
        exactly, but few players show it).
    audio_bitrate
        AAC bit rate in bit/s.
    odd_size
        ``yuv420p`` needs an even width and height. ``"pad"`` (default) repeats the
        last column/row, so the file is up to one pixel larger; ``"error"`` raises.
    faststart
        Move the index to the front of the file so it plays while downloading.
    """

    name = "mp4"
    description = "MP4: H.264 (libx264) video + AAC audio"
    suffixes = (".mp4", ".m4v")
    container_format = "mp4"
    video_codec = "libx264"
    audio_codec = "aac"
    audio_rates = (
        48000,
        44100,
        32000,
        24000,
        22050,
        16000,
        96000,
        88200,
        64000,
        12000,
        11025,
        8000,
    )

    def __init__(
        self,
        crf: int = 18,
        preset: str = "medium",
        pix_fmt: str = "yuv420p",
        audio_bitrate: int = 192_000,
        odd_size: str = "pad",
        faststart: bool = True,
    ) -> None:
        self._validate(
            {
                "crf": crf,
                "preset": preset,
                "pix_fmt": pix_fmt,
                "odd_size": odd_size,
                "audio_bitrate": audio_bitrate,
            },
        )

    @staticmethod
    def _validate(settings: dict[str, Any]) -> None:
        crf = settings["crf"]
        if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
            raise InputError(f"mp4 crf must be an integer in [0, 51], got {crf!r}")
        check_int_option("mp4 audio_bitrate", settings["audio_bitrate"], 0, 10_000_000)
        if settings["pix_fmt"] not in ("yuv420p", "yuv444p", "rgb24"):
            raise InputError(
                f"mp4 pix_fmt must be 'yuv420p', 'yuv444p' or 'rgb24', got {settings['pix_fmt']!r}"
            )
        if settings["odd_size"] not in ("pad", "error"):
            raise InputError(f"odd_size must be 'pad' or 'error', got {settings['odd_size']!r}")
        presets = (
            "ultrafast", "superfast", "veryfast", "faster", "fast",
            "medium", "slow", "slower", "veryslow", "placebo",
        )  # fmt: skip
        if settings["preset"] not in presets:
            raise InputError(f"mp4 preset must be one of {presets}, got {settings['preset']!r}")

    def options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Merge and validate per-call options (see :meth:`VideoWriterBase.options`)."""
        settings = super().options(overrides)
        self._validate(settings)
        return settings

    def video_codec_for(self, settings: dict[str, Any]) -> tuple[str, str]:
        """libx264 with the chosen pixel format; libx264rgb for ``rgb24``."""
        if settings["pix_fmt"] == "rgb24":
            return "libx264rgb", "rgb24"
        return "libx264", str(settings["pix_fmt"])

    def video_options(self, settings: dict[str, Any]) -> tuple[int | None, dict[str, str]]:
        """CRF and preset; libx264's AVX-512 routines off, so the bytes are reproducible.

        See :mod:`emo.io.writers.x264_cpu`: with them a file depends on the process's
        heap history, not only on the frames.
        """
        from emo.io.writers.x264_cpu import deterministic_x264_params

        codec = self.video_codec_for(settings)[0]
        options = {"crf": str(settings["crf"]), "preset": str(settings["preset"])}
        return None, {**options, **deterministic_x264_params(codec)}

    def container_options(self, settings: dict[str, Any]) -> dict[str, str]:
        """``movflags``: ``+faststart`` when asked; ``+use_metadata_tags`` to keep every tag."""
        flags = "+faststart" if settings.get("faststart") else ""
        return {"movflags": flags + "+use_metadata_tags"}


class WebMWriter(PyAVWriterBase):
    """WebM files: VP9 video (libvpx-vp9) and Opus audio (registry name ``webm``).

    Parameters
    ----------
    crf
        Constant quality, 0 to 63 (lower is better); 32 is a good default.
    lossless
        VP9 lossless mode (exact up to the RGB to YUV conversion).
    cpu_used
        Encoder speed, 0 (slowest, best) to 8.
    pix_fmt
        ``"yuv420p"`` or ``"yuv444p"``.
    audio_bitrate
        Opus bit rate in bit/s. Opus runs at 48 kHz; other rates are resampled.
    odd_size
        As for :class:`MP4Writer`.
    """

    name = "webm"
    description = "WebM: VP9 (libvpx-vp9) video + Opus audio"
    suffixes = (".webm",)
    container_format = "webm"
    video_codec = "libvpx-vp9"
    audio_codec = "libopus"
    audio_rates = (48000,)

    def __init__(
        self,
        crf: int = 32,
        lossless: bool = False,
        cpu_used: int = 4,
        pix_fmt: str = "yuv420p",
        audio_bitrate: int = 96_000,
        odd_size: str = "pad",
    ) -> None:
        self._validate(
            {
                "crf": crf,
                "pix_fmt": pix_fmt,
                "cpu_used": cpu_used,
                "odd_size": odd_size,
                "audio_bitrate": audio_bitrate,
            }
        )

    @staticmethod
    def _validate(settings: dict[str, Any]) -> None:
        crf = settings["crf"]
        if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 63:
            raise InputError(f"webm crf must be an integer in [0, 63], got {crf!r}")
        if settings["pix_fmt"] not in ("yuv420p", "yuv444p"):
            raise InputError(
                f"webm pix_fmt must be 'yuv420p' or 'yuv444p', got {settings['pix_fmt']!r}"
            )
        check_int_option("webm cpu_used", settings["cpu_used"], 0, 8)
        check_int_option("webm audio_bitrate", settings["audio_bitrate"], 0, 10_000_000)
        if settings["odd_size"] not in ("pad", "error"):
            raise InputError(f"odd_size must be 'pad' or 'error', got {settings['odd_size']!r}")

    def options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Merge and validate per-call options (see :meth:`VideoWriterBase.options`)."""
        settings = super().options(overrides)
        self._validate(settings)
        return settings

    def container_options(self, settings: dict[str, Any]) -> dict[str, str]:
        """``fflags=+bitexact``: no random segment and track UIDs, so the bytes are reproducible."""
        return {"fflags": "+bitexact"}

    def video_options(self, settings: dict[str, Any]) -> tuple[int | None, dict[str, str]]:
        """Constant-quality VP9 (``b=0``, ``crf``), row multithreading, speed."""
        options = {
            "crf": str(settings["crf"]),
            "b": "0",
            "row-mt": "1",
            "deadline": "good",
            "cpu-used": str(settings["cpu_used"]),
        }
        if settings.get("lossless"):
            del options["crf"]
            options["lossless"] = "1"
        return 0, options


_DITHERS = (
    "sierra2_4a", "floyd_steinberg", "bayer", "heckbert", "sierra2", "sierra3", "burkes",
    "atkinson", "none",
)  # fmt: skip


class GIFWriter(PyAVWriterBase):
    """Animated GIF files (registry name ``gif``); GIF holds no audio.

    Each frame gets its own 256-colour palette (FFmpeg's ``palettegen`` and
    ``paletteuse`` filters, with dithering); ``palette="fixed"`` uses FFmpeg's fixed
    8-bit ``rgb8`` palette instead (faster, coarser). Frame delays are whole
    hundredths of a second, so rates like 30 fps are approximate. Audio given to
    it is dropped with an :class:`~emo.errors.EMOWarning`.

    Parameters
    ----------
    loop
        Times to repeat; 0 loops forever, -1 plays once.
    palette
        ``"per_frame"`` (default) or ``"fixed"``.
    dither
        ``paletteuse`` dithering: ``"sierra2_4a"``, ``"floyd_steinberg"``, ``"bayer"``,
        ``"heckbert"``, ``"sierra2"``, ``"sierra3"``, ``"burkes"``, ``"atkinson"`` or ``"none"``.
    """

    name = "gif"
    description = "animated GIF (no audio)"
    suffixes = (".gif",)
    container_format = "gif"
    video_codec = "gif"
    audio_codec = ""

    def __init__(
        self, loop: int = 0, palette: str = "per_frame", dither: str = "sierra2_4a"
    ) -> None:
        self._validate({"loop": loop, "palette": palette, "dither": dither})

    @staticmethod
    def _validate(settings: dict[str, Any]) -> None:
        check_int_option("gif loop", settings["loop"], -1, 65535)
        if settings["palette"] not in ("per_frame", "fixed"):
            raise InputError(
                f"gif palette must be 'per_frame' or 'fixed', got {settings['palette']!r}"
            )
        if settings["dither"] not in _DITHERS:
            raise InputError(f"gif dither must be one of {_DITHERS}, got {settings['dither']!r}")

    def options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Merge and validate per-call options (see :meth:`VideoWriterBase.options`)."""
        settings = super().options(overrides)
        self._validate(settings)
        return settings

    def video_codec_for(self, settings: dict[str, Any]) -> tuple[str, str]:
        """The ``gif`` encoder on ``pal8`` (per-frame palette) or ``rgb8`` (fixed palette)."""
        return "gif", "pal8" if settings["palette"] == "per_frame" else "rgb8"

    def container_options(self, settings: dict[str, Any]) -> dict[str, str]:
        """The loop count."""
        return {"loop": str(int(settings["loop"]))}

    def finish_file(self, path: Path, metadata: dict[str, str]) -> None:
        """GIF has no tags: the metadata goes into one comment extension (``key=value`` lines)."""
        if metadata:
            from emo.provenance.label import add_gif_comment

            text = "\n".join(f"{key}={value}" for key, value in metadata.items())
            path.write_bytes(add_gif_comment(path.read_bytes(), text))

    def filter_graph(self, settings: dict[str, Any], width: int, height: int, fps: Fraction) -> Any:
        """``split -> palettegen (per frame) -> paletteuse`` for the per-frame palette."""
        if settings["palette"] != "per_frame":
            return None
        av = _av()
        graph = av.filter.Graph()
        source = graph.add_buffer(width=width, height=height, format="rgb24", time_base=1 / fps)
        split = graph.add("split")
        palettegen = graph.add("palettegen", "stats_mode=single")
        paletteuse = graph.add("paletteuse", f"new=1:dither={settings['dither']}")
        sink = graph.add("buffersink")
        source.link_to(split)
        split.link_to(palettegen, 0, 0)
        split.link_to(paletteuse, 1, 0)
        palettegen.link_to(paletteuse, 0, 1)
        paletteuse.link_to(sink)
        try:
            graph.configure()
        except av.error.FFmpegError as exc:
            raise VideoError(f"cannot set up the GIF palette filters: {exc}") from exc
        return graph
