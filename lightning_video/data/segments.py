"""Action segments of long videos: a clip is sampled inside the segment's frames, not over the whole video.

Epic-Kitchens annotates actions as frame ranges of videos that last many minutes. A `VideoSegment` is the video's path
(the string itself, so that whatever opens, lists or checks a video takes it unchanged) that also carries the segment's
first and last frame; `VideoClipDataset` samples inside them and the reader seeks to them, decoding only the frames the
clip takes.
"""
from __future__ import annotations

from lightning_video.data.decode import UnreadableVideo


class VideoSegment(str):
    """The path of a video file or frame folder, and the frames `first`..`last` (0-based, both included) of one action.

    Equal to its path as a string (two segments of one video are one video to decode or check).
    """

    first: int
    last: int

    def __new__(cls, path: str, first: int, last: int) -> VideoSegment:
        if not 0 <= first <= last:
            raise ValueError(f"a segment of {path} needs 0 <= first <= last frame, got {first} and {last}")
        segment = super().__new__(cls, path)
        segment.first, segment.last = first, last
        return segment

    def __reduce__(self) -> tuple:  # loader workers get the frames too, not only the string
        return VideoSegment, (str(self), self.first, self.last)

    def __repr__(self) -> str:
        return f"VideoSegment({str(self)!r}, {self.first}, {self.last})"


def frame_range(path: str, num_video_frames: int) -> tuple[int, int]:
    """The frames a clip of `path` is sampled from: a segment's, within the video, or all of them.

    Raises:
        UnreadableVideo: the segment starts after the video's last frame (annotations of another copy of the video).
    """
    if not isinstance(path, VideoSegment):
        return 0, num_video_frames - 1
    if path.first >= num_video_frames:
        raise UnreadableVideo(path, f"its segment starts at frame {path.first}, but the video has {num_video_frames} "
                                    f"frames (annotations of another copy of the video?)")
    # annotated stop frames can pass the end of a re-encoded copy by a frame or two
    return path.first, min(path.last, num_video_frames - 1)
