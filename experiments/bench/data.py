"""Data-loading speed: decoded and transformed training clips per second, for both readers (`data.reader`), for
prepared (`lightning-video prepare`) against original videos, and out of a `DataLoader` against its worker count
beside the model's training clips/s.

The TimeSformer training clip (T frames at sampling rate R, short side random in [256, 320], random 224 crop, flip,
normalised) from Kinetics-like videos (`kinetics_like`: 320×240 H.264 at 30 fps, a keyframe every 2 s, a corner
block coding each frame's index), written into a temporary folder. Pipelines are timed one clip of each in turn, so
they share the noise of a shared machine; ratios are the figures to compare.

- Readers, one process and one thread (a data worker's share): ours (`VideoClipDataset`: seeks to the clip, decodes
  only what the T sampled frames depend on, converts only them) against `data.reader: pytorchvideo` (PyTorchVideo's
  `LabeledVideoDataset`, random clip sampler of T × R / 30 s, its PyAV decoder, `UniformTemporalSubsample(T)`), with
  the decord decoder too where installed; then which frames each takes for one clip start.
- Prepared against original: the videos re-encoded as `prepare` does (`--encodings`: every encoding of
  `prepared.ENCODINGS`, to choose one), their size, clips/s with our reader, and the frames checked: the same frame
  indices, and the pixel error against the original frames resized.
- Loader: clips/s out of a `DataLoader` with 1, 2, ... workers (`--workers`), original and prepared, beside the
  model's training clips/s as measured by the model benchmark (2 CPU cores, fp32) and the GPU check (one H200, bf16).
- torchcodec against our PyAV reader on the same frames, where it runs.

    python -m experiments.bench data --sampling 8x32 16x16 --videos 8 --clips 32 --workers 1 2
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import torch

import lightning_video  # noqa: F401  (first: its compat shim lets pytorchvideo.transforms import)
from experiments.bench import prepared
from experiments.bench.kinetics_like import (CROP, FPS, HEIGHT, KEYFRAME_INTERVAL, MAX_SIDE, MEAN, MIN_SIDE, STD,
                                             WIDTH, read_codes, sampling, training_clips, write_video)
from lightning_video.data.decode import open_video
from lightning_video.data.pytorchvideo_reader import pytorchvideo_dataset
from lightning_video.data.sampling import clip_indices
from lightning_video.data.transforms import train_transform
from lightning_video.prepare import DEFAULT_ENCODING
from pytorchvideo.data.encoded_video import EncodedVideo  # noqa: I001
from pytorchvideo.transforms import UniformTemporalSubsample

Pipeline = Callable[[list[Path], int, int], Iterator[dict]]
OURS, THEIRS = "ours (PyAV, sampled frames only)", "data.reader: pytorchvideo (PyAV)"
REPOSITORY = Path(__file__).parents[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sampling", nargs="+", type=sampling, default=[(8, 32), (16, 16)], metavar="TxR",
                        help="clip samplings: T frames per clip, one frame in R (default 8x32 16x16)")
    parser.add_argument("--videos", type=int, default=8, help="videos to write")
    parser.add_argument("--seconds", type=int, default=10, help="length of each video")
    parser.add_argument("--clips", type=int, default=32, help="clips timed per pipeline and sampling")
    parser.add_argument("--encodings", action="store_true", help="also compare the encodings prepare could use")
    parser.add_argument("--workers", nargs="*", type=int, default=[1, 2], help="loader worker counts to time")
    parser.add_argument("--batch", type=int, default=4, help="loader batch size")
    parser.add_argument("--batches", type=int, default=8, help="timed loader batches per worker count")


def ours(paths: list[Path], frames: int, rate: int) -> Iterator[dict]:
    dataset = training_clips(paths, frames, rate)
    while True:
        yield from (dataset[int(i)] for i in torch.randperm(len(dataset)))


def pytorchvideo_reader(decoder: str) -> Pipeline:
    def clips(paths: list[Path], frames: int, rate: int) -> Iterator[dict]:
        dataset = pytorchvideo_dataset([(str(path), 0) for path in paths], frames, rate, "clip",
                                       train_transform(CROP, MIN_SIDE, MAX_SIDE, True, MEAN, STD), train=True,
                                       decoder=decoder)
        while True:
            yield from dataset
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
    """The clip start in the middle of the video, and the indices of the frames ours and PyTorchVideo take from there
    (the frames of the T × R / 30 s window from there, then `UniformTemporalSubsample`, as its clip samplers do).

    The window is in exact fractions of a second, as its clip samplers give it: in floats, an end that falls on a
    frame can round up past it and add a T × R + 1st frame.
    """
    with open_video(path) as reader:
        start = max(reader.num_frames - frames * rate, 0) // 2
        ours_frames = reader.read(clip_indices(reader.num_frames, frames, rate, start)).permute(3, 0, 1, 2)
    video = EncodedVideo.from_path(str(path), decoder="pyav", decode_audio=False)
    window = video.get_clip(Fraction(start, FPS), Fraction(start + frames * rate, FPS))["video"]
    video.close()
    return start, read_codes(ours_frames), read_codes(UniformTemporalSubsample(frames)(window))


def model_clips_per_second() -> dict[str, float]:
    """The divided-attention ViT-B/16 8×224 model's training clips/s as measured in this repository: the model
    benchmark on 2 CPU cores (fp32, batch 2) and the GPU check on one H200 (bf16, batch 16; its 100-step `fit`)."""
    figures = {}
    cpu = json.loads((REPOSITORY / "docs/results/index/bench_model_cpu.json").read_text())
    divided = next(row for row in cpu["rows"] if row["scheme"] == "divided" and row["model"] == "ours")
    figures["train step, 2 CPU cores, fp32, batch 2"] = 2 / divided["train_step_s"]
    gpu = json.loads((REPOSITORY / "docs/results/gpu_check_h200.json").read_text())["steps"]
    figures["train step, H200, bf16, batch 16"] = gpu["model"]["figures"]["divided"]["ours"]["train_clips_per_s"]
    figures["CLI fit, H200, bf16-mixed"] = gpu["fit"]["figures"]["clips_per_s"]
    return figures


def torchcodec_against_ours(paths: list[Path], frames: int, rate: int, count: int) -> str:
    """Decoded clips/s of torchcodec's `VideoDecoder` and of our reader on the same frames (decoding only), or the
    error that keeps torchcodec from running here."""
    try:
        from torchcodec.decoders import VideoDecoder

        VideoDecoder(str(paths[0]))
    except Exception as error:  # noqa: BLE001  (its library loader raises whatever FFmpeg lookup failed)
        lines = str(error).splitlines()
        missing = sorted({line.split(": ")[1] for line in lines if "cannot open shared object file" in line})
        return (f"torchcodec does not run here: {type(error).__name__}: {lines[0]}" +
                (f" (not found: {', '.join(missing)})" if missing else ""))
    generator = torch.Generator().manual_seed(0)
    seconds = {"ours (PyAV)": 0.0, "torchcodec": 0.0}
    for index in range(count):
        path = paths[index % len(paths)]
        with open_video(path) as reader:
            start = int(torch.randint(max(reader.num_frames - frames * rate, 0) + 1, (), generator=generator))
            indices = clip_indices(reader.num_frames, frames, rate, start).tolist()
        began = time.perf_counter()
        with open_video(path) as reader:
            theirs = reader.read(indices)
        middle = time.perf_counter()
        decoded = VideoDecoder(str(path), seek_mode="exact", num_ffmpeg_threads=1,
                               dimension_order="NHWC").get_frames_at(indices).data
        seconds["ours (PyAV)"] += middle - began
        seconds["torchcodec"] += time.perf_counter() - middle
        if not torch.equal(theirs, decoded):
            return f"torchcodec decodes other pixels than ours at frames {indices} of {path.name}"
    speeds = {name: count / total for name, total in seconds.items()}
    return (f"{frames}x{rate}, decoding only, same frames bit for bit: " +
            ", ".join(f"{name} {speed:.1f} clips/s" for name, speed in speeds.items()) +
            f"; torchcodec {speeds['torchcodec'] / speeds['ours (PyAV)']:.2f}× ours")


def readers(args: argparse.Namespace, paths: list[Path]) -> None:
    pipelines: dict[str, Pipeline] = {OURS: ours, THEIRS: pytorchvideo_reader("pyav")}
    try:
        import decord  # noqa: F401

        pipelines["data.reader: pytorchvideo (decord)"] = pytorchvideo_reader("decord")
    except ImportError:
        print("decord is not installed: its PyTorchVideo decoder is not measured")
    print("\n## Readers\n\n| sampling | reader | clips/s | vs pytorchvideo (PyAV) |\n|---|---|---|---|")
    for frames, rate in args.sampling:
        speeds = clips_per_second({name: pipeline(paths, frames, rate) for name, pipeline in pipelines.items()},
                                  args.clips, frames)
        for name, speed in speeds.items():
            print(f"| {frames}x{rate} | {name} | {speed:.2f} | {speed / speeds[THEIRS]:.2f}× |")
    print()
    for frames, rate in args.sampling:
        start, ours_indices, stock_indices = frames_selected(paths[0], frames, rate)
        print(f"{frames}x{rate} frames from a clip starting at frame {start}: ours {ours_indices}, stock "
              f"{stock_indices}: {'same' if ours_indices == stock_indices else 'different'}")


def prepared_against_original(args: argparse.Namespace, paths: list[Path], folder: Path) -> None:
    """Copies in the chosen encoding (with `--encodings`, in every one) timed against the originals."""
    encodings = prepared.ENCODINGS if args.encodings else [DEFAULT_ENCODING]
    workers = min(len(paths), os.cpu_count() or 1)
    copies = {encoding: prepared.prepare_copies(paths, folder / f"prepared{index}", encoding, 320, workers)
              for index, encoding in enumerate(encodings)}
    names = {encoding: prepared.describe(encoding) for encoding in encodings}
    print(f"\n## Prepared against original\n\noriginal: keyframe every {KEYFRAME_INTERVAL}, x264 veryfast, crf 23 "
          f"(x264's defaults otherwise); prepared: short side 320 (these are 240: kept)\n")
    print("| sampling | videos | size vs original | clips/s | vs original | same frames | PSNR (dB) | mean abs error |"
          "\n|---|---|---|---|---|---|---|---|")
    for frames, rate in args.sampling:
        if (frames, rate) != args.sampling[0] and args.encodings:
            encodings = [DEFAULT_ENCODING]  # the sweep at the first sampling; the others for the chosen one
        pipelines = {"original": ours(paths, frames, rate)}
        pipelines.update({names[encoding]: ours(copies[encoding], frames, rate) for encoding in encodings})
        speeds = clips_per_second(pipelines, args.clips, frames)
        print(f"| {frames}x{rate} | original | 1.00× | {speeds['original']:.2f} | 1.00× | | | |")
        for encoding in encodings:
            checks = [prepared.frame_agreement(path, copy, frames, rate) for path, copy in zip(paths, copies[encoding])]
            speed = speeds[names[encoding]]
            print(f"| {frames}x{rate} | {names[encoding]} | {prepared.size_ratio(paths, copies[encoding]):.2f}× | "
                  f"{speed:.2f} | {speed / speeds['original']:.2f}× | "
                  f"{'yes' if all(same for same, _, _ in checks) else 'NO'} | "
                  f"{min(psnr for _, psnr, _ in checks):.1f} (worst) | "
                  f"{max(error for _, _, error in checks):.2f} (worst) |")


def loader_against_model(args: argparse.Namespace) -> None:
    """`loader` in a fresh process per worker count: workers forked from this one, after its decoding threads and
    process pools, could hang on a lock copied held."""
    frames, rate = args.sampling[0]
    print(f"\n## Loader against the model\n\nDataLoader, batch {args.batch}, {frames}x{rate}, {args.batches} timed "
          f"batches after one per worker, {args.videos} videos of {args.seconds} s; original, then prepared\n")
    print("| workers | original clips/s | prepared clips/s | prepared vs original |\n|---|---|---|---|")
    for workers in args.workers:
        command = [sys.executable, "-m", "experiments.bench.loader", "--workers", str(workers), "--batch",
                   str(args.batch), "--batches", str(args.batches), "--sampling", f"{frames}x{rate}", "--videos",
                   str(args.videos), "--seconds", str(args.seconds), "--prepared"]
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPOSITORY, check=True)
        result = json.loads(done.stdout.rsplit("RESULT ", 1)[1])
        original, ready = result["clips_per_s"], result["prepared_clips_per_s"]
        print(f"| {workers} | {original:.1f} | {ready:.1f} | {ready / original:.2f}× |")
    print("\nthe model's training clips/s (divided ViT-B/16 8×224, as measured in docs/results/):")
    for name, speed in model_clips_per_second().items():
        print(f"- {name}: {speed:.2f} clips/s")


def run(args: argparse.Namespace) -> None:
    wall = time.perf_counter()
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
            readers(args, paths)
            prepared_against_original(args, paths, Path(folder))
            if args.workers:
                loader_against_model(args)
            frames, rate = args.sampling[0]
            print(f"\n## torchcodec\n\n{torchcodec_against_ours(paths, frames, rate, args.clips)}")
    finally:
        torch.set_num_threads(threads)
    print(f"\nwall time of the whole run: {time.perf_counter() - wall:.0f} s")
