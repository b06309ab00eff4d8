"""Data-loading throughput: decoded and transformed training clips per second in one process (one data worker).

The TimeSformer training clip (8 frames at sampling rate 32, short side random in [256, 320], random 224 crop, flip,
normalised) from 10-second 320×240 H.264 videos at 30 fps, which the script writes with PyAV into a temporary
folder (Kinetics-like: a keyframe every 2 s). Compared on the same files and the same transform:

- ours: `VideoClipDataset` (seeks to the clip, converts only the 8 sampled frames);
- PyTorchVideo's stock `Kinetics` (`LabeledVideoDataset`, random clip sampler of 8 × 32 / 30 s, PyAV decoder,
  `UniformTemporalSubsample(8)` in its `create_video_transform`), and with the decord decoder where installed.

    python experiments/bench_data.py --videos 4 --clips 16
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import torch

import lightning_video  # noqa: F401  (first: its compat shim lets pytorchvideo.transforms import)
from lightning_video.data.dataset import VideoClipDataset
from lightning_video.data.transforms import train_transform
from pytorchvideo.data import Kinetics, make_clip_sampler  # noqa: I001
from pytorchvideo.transforms import create_video_transform

FPS, SECONDS, WIDTH, HEIGHT = 30, 10, 320, 240
NUM_FRAMES, SAMPLING_RATE, CROP, MIN_SIDE, MAX_SIDE = 8, 32, 224, 256, 320
MEAN, STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)


def write_video(path: Path, seed: int) -> None:
    """A textured background drifting behind a moving square: content that does not compress to nothing."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (HEIGHT, WIDTH * 2, 3), dtype=np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "veryfast", "g": str(2 * FPS)}
        for t in range(FPS * SECONDS):
            frame = texture[:, t % WIDTH:t % WIDTH + WIDTH].copy()
            y, x = (t * 2) % (HEIGHT - 40), (t * 3) % (WIDTH - 40)
            frame[y:y + 40, x:x + 40] = (255, 40, 40)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def clips_per_second(clips: Iterator[dict], count: int) -> float:
    next(clips)  # warm-up: imports, first file open
    start = time.perf_counter()
    for _ in range(count):
        sample = next(clips)
        assert sample["video"].shape == (3, NUM_FRAMES, CROP, CROP), sample["video"].shape
    return count / (time.perf_counter() - start)


def ours(paths: list[Path]) -> Iterator[dict]:
    dataset = VideoClipDataset([(str(path), 0) for path in paths], NUM_FRAMES, SAMPLING_RATE,
                               train_transform(CROP, MIN_SIDE, MAX_SIDE, True, MEAN, STD), train=True)
    while True:
        yield from (dataset[int(i)] for i in torch.randperm(len(dataset)))


def stock(decoder: str) -> Callable[[list[Path]], Iterator[dict]]:
    def clips(paths: list[Path]) -> Iterator[dict]:
        table = paths[0].parent / "videos.csv"
        table.write_text("".join(f"{path} 0\n" for path in paths))
        # its decoders return float frames in [0, 255]: normalise with the constants scaled to match
        transform = create_video_transform("train", video_key="video", num_samples=NUM_FRAMES,
                                           convert_to_float=False, video_mean=tuple(255 * m for m in MEAN),
                                           video_std=tuple(255 * s for s in STD), min_size=MIN_SIDE,
                                           max_size=MAX_SIDE, crop_size=CROP)
        while True:
            yield from Kinetics(str(table), make_clip_sampler("random", NUM_FRAMES * SAMPLING_RATE / FPS),
                                transform=transform, decode_audio=False, decoder=decoder)
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=8, help="10-second videos to write")
    parser.add_argument("--clips", type=int, default=32, help="clips timed per pipeline")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one worker's share of the machine
    torch.manual_seed(0)
    pipelines = {"ours (PyAV, sampled frames only)": ours, "PyTorchVideo Kinetics (PyAV)": stock("pyav")}
    try:
        import decord  # noqa: F401

        pipelines["PyTorchVideo Kinetics (decord)"] = stock("decord")
    except ImportError:
        print("decord is not installed: its PyTorchVideo decoder is not measured")
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / f"video{index}.mp4" for index in range(args.videos)]
        start = time.perf_counter()
        for seed, path in enumerate(paths):
            write_video(path, seed)
        print(f"wrote {args.videos} videos of {SECONDS} s, {WIDTH}x{HEIGHT} at {FPS} fps in "
              f"{time.perf_counter() - start:.1f} s; timing {args.clips} clips of {NUM_FRAMES}x{SAMPLING_RATE} at "
              f"{CROP} per pipeline, one process, one thread")
        for name, pipeline in pipelines.items():
            print(f"{name:36s} {clips_per_second(pipeline(paths), args.clips):6.2f} clips/s")


if __name__ == "__main__":
    main()
