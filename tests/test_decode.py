"""VideoReader.read skips what the wanted frames do not need, yet returns them bit for bit as a full decode does, turned
upright as a player shows them."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from lightning_video.data.decode import FrameFolder, VideoReader

FRAMES, WIDTH, HEIGHT = 90, 64, 48
ORIENTATION = 0x0112  # the EXIF tag
# short GOPs with B-frames that reference others (b-pyramid), closed and open (leading frames need the GOP before)
X264 = "keyint=12:min-keyint=12:scenecut=0:bframes=3:b-adapt=0:b-pyramid=normal"
ENCODINGS = {
    "h264": ("libx264", "mp4", {"x264-params": X264}),
    "h264 open GOP": ("libx264", "mp4", {"x264-params": X264 + ":open-gop=1"}),
    "hevc": ("libx265", "mp4", {"x265-params": "keyint=12:min-keyint=12:scenecut=0:bframes=3:b-adapt=0:log-level=0"}),
    "vp9": ("libvpx-vp9", "webm", {"g": "12", "lag-in-frames": "16", "auto-alt-ref": "1"}),
}


def write_video(path: Path, codec: str, options: dict[str, str]) -> None:
    """A texture sliding under a moving square: every frame differs, and most can be predicted from others."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (HEIGHT, WIDTH + FRAMES, 3), dtype=np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt, stream.options = WIDTH, HEIGHT, "yuv420p", options
        for t in range(FRAMES):
            frame = texture[:, t:t + WIDTH].copy()
            frame[t % 40:t % 40 + 8, t % 56:t % 56 + 8] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


@pytest.fixture(scope="module", params=list(ENCODINGS))
def video(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A video file and all its frames, decoded one after the other."""
    codec, suffix, options = ENCODINGS[request.param]
    path = tmp_path_factory.mktemp("decode") / f"video.{suffix}"
    write_video(path, codec, options)
    with av.open(str(path)) as container:
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    assert len(frames) == FRAMES
    return path, frames


def index_sets() -> list[list[int]]:
    rng = np.random.default_rng(1)
    drawn = [sorted(rng.integers(0, FRAMES, rng.integers(1, 10)).tolist()) for _ in range(30)]  # repeats, wide gaps
    # each GOP's first and last frame, across GOP boundaries, the ends, all frames
    return [[0], [FRAMES - 1], [11, 12], [12, 23], [5, 5, 5], [0, 44, 89], list(range(FRAMES)), *drawn]


def test_read_returns_the_frames_of_a_full_decode(video: tuple[Path, np.ndarray]):
    path, frames = video
    with VideoReader(path) as reader:
        for indices in index_sets():
            assert np.array_equal(reader.read(indices).numpy(), frames[indices]), indices


def test_read_decodes_less_than_everything_up_to_the_last_frame(video: tuple[Path, np.ndarray]):
    path, _ = video
    with VideoReader(path) as reader:
        decoded = [index for index, _ in reader._decoded({2, 40})]
    assert {2, 40} <= set(decoded) and len(decoded) < 41


def quarter_turns_grey_blocks(frames: int) -> np.ndarray:
    """Upright `[T, 48, 32, 3]` frames (portrait, as a phone held upright films) of random grey 8×8 blocks: every
    quarter turn or flip of them differs, and grey survives 4:2:0 chroma subsampling."""
    blocks = np.random.default_rng(2).integers(0, 256, (frames, 6, 4), dtype=np.uint8)
    return np.repeat(np.repeat(blocks, 8, axis=1), 8, axis=2)[..., None].repeat(3, axis=3)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_frames_come_out_upright_as_a_player_shows_them(tmp_path: Path, degrees: int):
    """A phone stores frames as its sensor saw them, with a display matrix by which a player turns them
    (counterclockwise, in FFmpeg's and PyAV's convention) before showing them."""
    upright = quarter_turns_grey_blocks(6)
    stored = np.rot90(upright, -degrees // 90, axes=(1, 2))
    path = tmp_path / "phone.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.height, stream.width = stored.shape[1:3]
        stream.pix_fmt, stream.options = "yuv420p", {"qp": "0"}
        stream.set_display_rotation(degrees)
        for image in stored:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
        container.mux(stream.encode())
    with av.open(str(path)) as container:
        as_stored = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    with VideoReader(path) as reader:
        frames = reader.read([0, 2, 5]).numpy()
    assert np.array_equal(frames, np.rot90(as_stored[[0, 2, 5]], degrees // 90, axes=(1, 2)))
    assert frames.shape[1:3] == upright.shape[1:3]
    assert np.abs(frames.astype(int) - upright[[0, 2, 5]]).mean() < 2  # the picture as filmed, not just its shape


def test_frame_folder_images_are_turned_by_their_exif_orientation(tmp_path: Path):
    upright = quarter_turns_grey_blocks(2)
    for index, image in enumerate(upright):
        exif = Image.Exif()
        exif[ORIENTATION] = 6  # "turn 90° clockwise to display": the stored image is the upright one turned back
        Image.fromarray(np.rot90(image).copy()).save(tmp_path / f"{index:06d}.jpg", quality=100, exif=exif)
    frames = FrameFolder(tmp_path).read([0, 1]).numpy()
    assert frames.shape == upright.shape and np.abs(frames.astype(int) - upright).mean() < 2
