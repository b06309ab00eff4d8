"""Data-loading speed: decoded and transformed training clips per second in one process (one data worker, one thread),
ours against PyTorchVideo's stock `Kinetics` pipeline on the same files and the same transform, per clip sampling.

The TimeSformer training clip (T frames at sampling rate R, short side random in [256, 320], random 224 crop, flip,
normalised) from 320×240 H.264 videos at 30 fps, written with PyAV into a temporary folder (Kinetics-like: a keyframe
every 2 s; a corner block codes each frame's index). Compared, one clip of each in turn so both share machine noise:

- ours: `VideoClipDataset` (seeks to the clip, decodes only what the T sampled frames depend on, converts only them);
- PyTorchVideo's stock `Kinetics` (`LabeledVideoDataset`, random clip sampler of T × R / 30 s, PyAV decoder,
  `UniformTemporalSubsample(T)` in its `create_video_transform`), and with the decord decoder where installed.

Then, for one clip start, which frames each pipeline takes (read from the index codes of the decoded frames).

    python -m experiments.bench data --sampling 8x32 16x16 --videos 8 --clips 32
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

import lightning_video  # noqa: F401  (first: its compat shim lets pytorchvideo.transforms import)
from lightning_video.data.dataset import VideoClipDataset
from lightning_video.data.decode import open_video
from lightning_video.data.sampling import clip_indices
from lightning_video.data.transforms import train_transform
from pytorchvideo.data import Kinetics, make_clip_sampler  # noqa: I001
from pytorchvideo.data.encoded_video import EncodedVideo
from pytorchvideo.transforms import UniformTemporalSubsample, create_video_transform

FPS, WIDTH, HEIGHT, CODE = 30, 320, 240, 32
CROP, MIN_SIDE, MAX_SIDE = 224, 256, 320
MEAN, STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)
Pipeline = Callable[[list[Path], int, int], Iterator[dict]]
STOCK = "PyTorchVideo Kinetics (PyAV)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sampling", nargs="+", type=sampling, default=[(8, 32), (16, 16)], metavar="TxR",
                        help="clip samplings: T frames per clip, one frame in R (default 8x32 16x16)")
    parser.add_argument("--videos", type=int, default=8, help="videos to write")
    parser.add_argument("--seconds", type=int, default=10, help="length of each video")
    parser.add_argument("--clips", type=int, default=32, help="clips timed per pipeline and sampling")


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
    """The frame indices coded in the corner block of uint8 or float frames `[C, T, H, W]`."""
    block = video[:, :, CODE // 4:3 * CODE // 4, CODE // 4:3 * CODE // 4].float().mean(dim=(2, 3))
    digits = ((block - 8) / 16).round().clamp(0, 15).long()
    return (digits[0] * 256 + digits[1] * 16 + digits[2]).tolist()


def write_video(path: Path, seed: int, seconds: int) -> None:
    """A textured background drifting behind a moving square (content that does not compress to nothing), and the
    frame's index coded in the top-left block."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (HEIGHT, WIDTH * 2, 3), dtype=np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "veryfast", "g": str(2 * FPS)}
        for t in range(FPS * seconds):
            frame = texture[:, t % WIDTH:t % WIDTH + WIDTH].copy()
            y, x = CODE + (t * 2) % (HEIGHT - 40 - CODE), CODE + (t * 3) % (WIDTH - 40 - CODE)
            frame[y:y + 40, x:x + 40] = (255, 40, 40)
            frame[:CODE, :CODE] = frame_code(t)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def ours(paths: list[Path], frames: int, rate: int) -> Iterator[dict]:
    dataset = VideoClipDataset([(str(path), 0) for path in paths], frames, rate,
                               train_transform(CROP, MIN_SIDE, MAX_SIDE, True, MEAN, STD), train=True)
    while True:
        yield from (dataset[int(i)] for i in torch.randperm(len(dataset)))


def stock(decoder: str) -> Pipeline:
    def clips(paths: list[Path], frames: int, rate: int) -> Iterator[dict]:
        table = paths[0].parent / "videos.csv"
        table.write_text("".join(f"{path} 0\n" for path in paths))
        # its decoders return float frames in [0, 255]: normalise with the constants scaled to match
        transform = create_video_transform("train", video_key="video", num_samples=frames, convert_to_float=False,
                                           video_mean=tuple(255 * m for m in MEAN),
                                           video_std=tuple(255 * s for s in STD), min_size=MIN_SIDE,
                                           max_size=MAX_SIDE, crop_size=CROP)
        while True:
            yield from Kinetics(str(table), make_clip_sampler("random", frames * rate / FPS), transform=transform,
                                decode_audio=False, decoder=decoder)
    return clips


def clips_per_second(pipelines: dict[str, Iterator[dict]], count: int, frames: int) -> dict[str, float]:
    """Clips/s of each pipeline, timed one clip of each in turn (the first clip of each is a warm-up)."""
    seconds = dict.fromkeys(pipelines, 0.0)
    for clips in pipelines.values():
        next(clips)
    for index in range(count):
        for name, clips in list(pipelines.items())[::-1 if index % 2 else 1]:
            start = time.perf_counter()
            sample = next(clips)
            seconds[name] += time.perf_counter() - start
            assert sample["video"].shape == (3, frames, CROP, CROP), sample["video"].shape
    return {name: count / total for name, total in seconds.items()}


def frames_selected(path: Path, frames: int, rate: int) -> tuple[int, list[int], list[int]]:
    """The clip start in the middle of the video, and the indices of the frames ours and stock take from there
    (stock: the frames of the T × R / 30 s window from there, then `UniformTemporalSubsample`, as `Kinetics` does).

    The window is in exact fractions of a second, as `Kinetics`' clip sampler gives it: in floats, an end that falls on
    a frame can round up past it and add a T × R + 1st frame.
    """
    with open_video(path) as reader:
        start = max(reader.num_frames - frames * rate, 0) // 2
        ours_frames = reader.read(clip_indices(reader.num_frames, frames, rate, start)).permute(3, 0, 1, 2)
    video = EncodedVideo.from_path(str(path), decoder="pyav", decode_audio=False)
    window = video.get_clip(Fraction(start, FPS), Fraction(start + frames * rate, FPS))["video"]
    video.close()
    return start, read_codes(ours_frames), read_codes(UniformTemporalSubsample(frames)(window))


def run(args: argparse.Namespace) -> None:
    wall = time.perf_counter()
    pipelines: dict[str, Pipeline] = {"ours (PyAV, sampled frames only)": ours, STOCK: stock("pyav")}
    try:
        import decord  # noqa: F401

        pipelines["PyTorchVideo Kinetics (decord)"] = stock("decord")
    except ImportError:
        print("decord is not installed: its PyTorchVideo decoder is not measured")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one worker's share of the machine
    torch.manual_seed(0)
    try:
        with tempfile.TemporaryDirectory() as folder:
            paths = [Path(folder) / f"video{index}.mp4" for index in range(args.videos)]
            for seed, path in enumerate(paths):
                write_video(path, seed, args.seconds)
            print(f"data bench: {args.videos} videos of {args.seconds} s, {WIDTH}x{HEIGHT} at {FPS} fps; "
                  f"{args.clips} clips per pipeline and sampling, {CROP} crop; one process, one thread")
            print("\n| sampling | pipeline | clips/s | vs stock (PyAV) |\n|---|---|---|---|")
            for frames, rate in args.sampling:
                speeds = clips_per_second({name: pipeline(paths, frames, rate) for name, pipeline in pipelines.items()},
                                          args.clips, frames)
                for name, speed in speeds.items():
                    print(f"| {frames}x{rate} | {name} | {speed:.2f} | {speed / speeds[STOCK]:.2f}× |")
            print()
            for frames, rate in args.sampling:
                start, ours_indices, stock_indices = frames_selected(paths[0], frames, rate)
                print(f"{frames}x{rate} frames from a clip starting at frame {start}: ours {ours_indices}, stock "
                      f"{stock_indices}: {'same' if ours_indices == stock_indices else 'different'}")
    finally:
        torch.set_num_threads(threads)
    print(f"\nwall time of the whole run: {time.perf_counter() - wall:.0f} s")
