"""Decode only the frames a clip needs: from a video file with PyAV, or from a folder of extracted frames.

A clip of `num_frames` at `sampling_rate` uses one frame in `sampling_rate`; decoding and converting every
frame of the window (what PyTorchVideo's time-based `get_clip` does) wastes most of the work. We seek to
the keyframe before the first needed frame and hand the decoder only what the wanted frames depend on: a frame
that no other frame references (most B-frames) is skipped unless wanted, and the rest of a GOP after its last
wanted frame is not sent at all (the decoder restarts at the next keyframe, as after a seek). The frames are the
same, bit for bit, as from decoding everything; only the ones we keep are converted to RGB.
Frames come out upright, as a player shows them: phone videos are stored as the sensor saw them, with a display
matrix (`rotate` in older tools) saying how to turn them, and we turn them (`_upright`).
A folder of frames (how SSv2 is often stored) is read the same way: only the sampled images are decoded, and turned
as their EXIF orientation says.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, pairwise
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter
from PIL import Image, ImageOps

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
_converters = threading.local()


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """`frame.to_ndarray(format="rgb24")`, the same pixels, through one colour converter per thread: the call on the
    frame sets up a new converter every time, which costs more than decoding a small frame."""
    if not hasattr(_converters, "rgb"):
        _converters.rgb = VideoReformatter()
    return _converters.rgb.reformat(frame, format="rgb24").to_ndarray()


def _upright(frame: av.VideoFrame) -> np.ndarray:
    """The frame's RGB pixels turned counterclockwise by its display matrix's angle, as FFmpeg's players do. Angles are
    taken to the nearest quarter turn (phones write only those); a mirroring in the matrix is not applied."""
    pixels = _to_rgb(frame)
    quarter_turns = round(frame.rotation / 90) % 4
    return np.rot90(pixels, quarter_turns) if quarter_turns else pixels


class UnreadableVideo(RuntimeError):
    """A video file that cannot be opened or decoded (missing, truncated, not a video)."""

    def __init__(self, path: str | Path, reason: object) -> None:
        super().__init__(f"cannot read video {path}: {reason}")
        self.path = str(path)
        self.reason = str(reason)


class VideoReader:
    """An open video file: its frame count and rate, and random access to frames by index."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._container = av.open(self.path)
        except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
            raise UnreadableVideo(path, error) from error
        if not self._container.streams.video:
            self.close()
            raise UnreadableVideo(path, "no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_count = 1  # one decoder thread per data worker; workers give the parallelism
        self.fps = float(self._stream.average_rate or self._stream.guessed_rate or 0)
        if self.fps <= 0:
            self.close()
            raise UnreadableVideo(path, "no frame rate in the video stream")
        self._start = self._stream.start_time or 0
        self._frames_per_tick = float(self._stream.time_base) * self.fps
        self.num_frames = self._stream.frames or self._frames_from_duration()
        if self.num_frames <= 0:
            self.close()
            raise UnreadableVideo(path, "no frames")

    def _frames_from_duration(self) -> int:
        stream = self._stream
        if stream.duration is not None:
            return int(round(float(stream.duration * stream.time_base) * self.fps))
        if self._container.duration is not None:
            return int(round(self._container.duration / av.time_base * self.fps))
        return 0

    def _index(self, pts: int | None) -> int | None:
        return None if pts is None else round((pts - self._start) * self._frames_per_tick)

    def _seek(self, first: int) -> Iterator[av.Packet]:
        """The packets in decoding order from a keyframe shown no later than frame `first`. A seek to `first`'s time
        can land on the keyframe after it if `first` leads an open GOP (is shown before the keyframe, decoded after
        it); then we seek again, to before that keyframe's decoding time."""
        target = self._start + int(first / self.fps / self._stream.time_base)
        while True:
            self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
            # an empty packet marks the end of the stream: sent to the decoder, it would drain it
            packets = (packet for packet in self._container.demux(self._stream) if packet.size)
            landed = next(packets, None)
            if landed is None:
                return iter(())
            index = self._index(landed.pts)
            if index is None or index <= first or landed.dts is None or landed.dts - 1 >= target:
                return chain([landed], packets)
            target = landed.dts - 1

    def _packets(self, first: int, last: int) -> Iterator[tuple[int | None, av.Packet, bool]]:
        """(frame index, packet, whether it starts a GOP) in decoding order, from the keyframe before `first` up to
        the GOP after `last`. A GOP starts at a keyframe that the next packet is not shown before: an open GOP's
        leading frames need the GOP before, so its keyframe is no fresh start."""
        demuxed = ((self._index(packet.pts), packet) for packet in self._seek(first))
        for (index, packet), (next_index, _) in pairwise(chain(demuxed, [(None, None)])):
            starts_gop = packet.is_keyframe and index is not None and (next_index is None or next_index > index)
            if starts_gop and index > last:
                return
            yield index, packet, starts_gop

    def _decoded(self, wanted: set[int]) -> Iterator[tuple[int, av.VideoFrame]]:
        """(index, frame) of at least the `wanted` frames. A packet is held back until a wanted one follows in its GOP;
        a GOP's held tail is dropped, and the decoder drained and flushed (as a seek does) before the next GOP."""
        context = self._stream.codec_context
        held: list[tuple[int | None, av.Packet]] = []
        try:
            for index, packet, starts_gop in self._packets(min(wanted), max(wanted)):
                if starts_gop and held:
                    held = []
                    yield from self._indexed(self._drained())
                held.append((index, packet))
                if index in wanted:
                    for held_index, held_packet in held:
                        # a frame that no other frame references is decoded only if wanted (or of unknown time)
                        context.skip_frame = "DEFAULT" if held_index is None or held_index in wanted else "NONREF"
                        yield from self._indexed(context.decode(held_packet))
                    held = []
            yield from self._indexed(self._drained())
        except (av.FFmpegError, OSError, ValueError) as error:
            raise UnreadableVideo(self.path, error) from error

    def _drained(self) -> list[av.VideoFrame]:
        """The frames the decoder still holds back for reordering; then a reset, ready for a new start."""
        context = self._stream.codec_context
        frames = context.decode(None)
        context.flush_buffers()
        return frames

    def _indexed(self, frames: Iterable[av.VideoFrame]) -> Iterator[tuple[int, av.VideoFrame]]:
        return ((self._index(frame.pts), frame) for frame in frames if frame.pts is not None)

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames at `indices` (ascending, repeats allowed) as uint8 `[T, H, W, 3]`, upright (H and W as displayed)."""
        wanted = set(int(i) for i in indices)
        found = {index: _upright(frame) for index, frame in self._decoded(wanted) if index in wanted}
        _raise_if_missing(self.path, wanted - found.keys(), self.num_frames)
        return torch.from_numpy(np.stack([found[int(i)] for i in indices]))

    def check(self) -> None:
        """Decode every frame (without converting it): raises UnreadableVideo if any frame a clip may take is not
        there, e.g. in a truncated file whose header promises more."""
        decoded = {index for index, _ in self._decoded(set(range(self.num_frames)))}
        _raise_if_missing(self.path, set(range(self.num_frames)) - decoded, self.num_frames)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FrameFolder:
    """A video stored as one image per frame (`<folder>/*.jpg` or `*.png`, in natural order: `img_2` before
    `img_10`), with the reader's interface. Its frame rate is unknown and not needed: sampling counts frames."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._frames = sorted((file for file in Path(path).iterdir() if file.suffix.lower() in FRAME_SUFFIXES),
                              key=_natural_key)
        self.num_frames = len(self._frames)
        if not self._frames:
            raise UnreadableVideo(path, f"no frames ({', '.join(FRAME_SUFFIXES)}) in the folder")

    def _image(self, index: int) -> torch.Tensor:
        try:
            with Image.open(self._frames[index]) as image:
                return torch.from_numpy(np.asarray(ImageOps.exif_transpose(image).convert("RGB")).copy())
        except OSError as error:  # PIL's UnidentifiedImageError and truncated-file errors are OSErrors
            raise UnreadableVideo(self.path, f"frame {self._frames[index].name}: {error}") from error

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames at `indices` as uint8 `[T, H, W, 3]`; each distinct image is decoded once."""
        images = {int(i): self._image(int(i)) for i in set(indices)}
        try:
            return torch.stack([images[int(i)] for i in indices])
        except RuntimeError as error:  # frames of different sizes
            raise UnreadableVideo(self.path, error) from error

    def check(self) -> None:
        self.read(range(self.num_frames))

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def open_video(path: str | Path) -> VideoReader | FrameFolder:
    """A reader for a video file, or for a folder of frames."""
    return FrameFolder(path) if Path(path).is_dir() else VideoReader(path)


def unreadable_reason(path: str | Path) -> str | None:
    """Why the video at `path` cannot be read in full, or None if it can."""
    try:
        with open_video(path) as reader:
            reader.check()
    except UnreadableVideo as error:
        return error.reason
    return None


def _raise_if_missing(path: str, missing: set[int], num_frames: int) -> None:
    if missing:
        raise UnreadableVideo(path, f"frames {sorted(missing)[:5]} of {num_frames} could not be decoded")


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]
