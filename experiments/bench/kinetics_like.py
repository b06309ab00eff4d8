"""The videos the data benchmarks write and the training clip they take: Kinetics-like H.264 at 30 fps with a
keyframe every 2 s (as `youtube-dl` downloads mostly come), a textured background drifting behind a moving square
(content that does not compress to nothing), and each frame's index coded in its top-left block, so that a benchmark
can read which frames a pipeline took (`read_codes`)."""
from __future__ import annotations

import argparse
from pathlib import Path

import av
import numpy as np
import torch

from lightning_video.data.dataset import VideoClipDataset
from lightning_video.data.transforms import train_transform

FPS, WIDTH, HEIGHT, CODE = 30, 320, 240, 32
KEYFRAME_INTERVAL = 2 * FPS
CROP, MIN_SIDE, MAX_SIDE = 224, 256, 320
MEAN, STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)


def sampling(text: str) -> tuple[int, int]:
    try:
        frames, rate = (int(part) for part in text.split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is no sampling; write FRAMESxRATE, e.g. 8x32") from None
    return frames, rate


def frame_code(index: int) -> tuple[int, int, int]:
    """An RGB colour naming a frame index in base 16, one digit per channel, far enough apart to survive H.264."""
    return tuple(16 * (index // 16**digit % 16) + 8 for digit in (2, 1, 0))


def read_codes(video: torch.Tensor) -> list[int]:
    """The frame indices coded in the corner block of uint8 or float frames `[C, T, H, W]` (of the written size)."""
    block = video[:, :, CODE // 4:3 * CODE // 4, CODE // 4:3 * CODE // 4].float().mean(dim=(2, 3))
    digits = ((block - 8) / 16).round().clamp(0, 15).long()
    return (digits[0] * 256 + digits[1] * 16 + digits[2]).tolist()


def write_video(path: Path, seed: int, seconds: int) -> None:
    """A `seconds`-long video (see the module docstring)."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (HEIGHT, WIDTH * 2, 3), dtype=np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "veryfast", "g": str(KEYFRAME_INTERVAL)}
        for t in range(FPS * seconds):
            frame = texture[:, t % WIDTH:t % WIDTH + WIDTH].copy()
            y, x = CODE + (t * 2) % (HEIGHT - 40 - CODE), CODE + (t * 3) % (WIDTH - 40 - CODE)
            frame[y:y + 40, x:x + 40] = (255, 40, 40)
            frame[:CODE, :CODE] = frame_code(t)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def training_clips(paths: list[Path], frames: int, rate: int) -> VideoClipDataset:
    """Our dataset of TimeSformer training clips (T frames at rate R, short side in [256, 320], 224 crop, flip)."""
    return VideoClipDataset([(str(path), 0) for path in paths], frames, rate,
                            train_transform(CROP, MIN_SIDE, MAX_SIDE, True, MEAN, STD), train=True)
