"""Training clips per second out of a `DataLoader` with N worker processes, on the data benchmark's Kinetics-like
videos (`data.write_video`: 320×240 H.264 at 30 fps, a keyframe every 2 s) and our training pipeline: the rate a
GPU can be fed at, to set beside the model's clips/s. With `--prepared`, also of the same videos prepared as
`lightning-video prepare` does (original and prepared timed in turn).

The videos are written in parallel. The first `workers` batches are a warm-up (the workers start and each fills its
first batch at once); the rate is over the batches after them. Prints `RESULT {json}` last.

    python -m experiments.bench.loader --workers 16 --batch 16 --batches 40 --prepared
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import torch
from torch.utils.data import DataLoader, RandomSampler

from experiments.bench.prepared import prepare_copies
from experiments.bench.kinetics_like import CROP, FPS, HEIGHT, WIDTH, sampling, training_clips, write_video
from lightning_video.prepare import DEFAULT_ENCODING


def clips_per_second(paths: list[Path], frames: int, rate: int, workers: int, batch: int, batches: int) -> float:
    dataset = training_clips(paths, frames, rate)
    warmup = max(workers, 1)
    sampler = RandomSampler(dataset, replacement=True, num_samples=(warmup + batches) * batch)
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers)
    start = None
    for index, sample in enumerate(loader):
        assert sample["video"].shape == (batch, 3, frames, CROP, CROP), sample["video"].shape
        if index == warmup - 1:
            start = time.perf_counter()
    return batches * batch / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench.loader", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=16, help="DataLoader worker processes (0: in this process)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batches", type=int, default=40, help="timed batches, after `workers` warm-up batches")
    parser.add_argument("--sampling", type=sampling, default=(8, 32), metavar="TxR", help="TimeSformer's: 8x32")
    parser.add_argument("--videos", type=int, default=32, help="videos to write")
    parser.add_argument("--seconds", type=int, default=10, help="length of each video")
    parser.add_argument("--prepared", action="store_true", help="also time the videos prepared by `prepare`")
    args = parser.parse_args(argv)
    frames, rate = args.sampling
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / f"video{index}.mp4" for index in range(args.videos)]
        start = time.perf_counter()
        with Pool(max(args.workers, 1)) as pool:
            pool.starmap(write_video, [(path, seed, args.seconds) for seed, path in enumerate(paths)])
        written = time.perf_counter() - start
        print(f"wrote {args.videos} videos of {args.seconds} s ({WIDTH}x{HEIGHT}, {FPS} fps) in {written:.1f} s")
        result = dict(workers=args.workers, batch=args.batch, sampling=f"{frames}x{rate}", videos=args.videos,
                      seconds=args.seconds, write_s=written)
        if args.prepared:
            start = time.perf_counter()
            copies = prepare_copies(paths, Path(folder) / "prepared", DEFAULT_ENCODING, 320, max(args.workers, 1))
            result["prepare_s"] = time.perf_counter() - start
        result["clips_per_s"] = clips_per_second(paths, frames, rate, args.workers, args.batch, args.batches)
        if args.prepared:
            result["prepared_clips_per_s"] = clips_per_second(copies, frames, rate, args.workers, args.batch,
                                                              args.batches)
    for key, name in (("clips_per_s", "loader"), ("prepared_clips_per_s", "loader, prepared videos")):
        if key in result:
            print(f"{name}: {result[key]:.1f} clips/s with {args.workers} workers, batch {args.batch}, "
                  f"{frames}x{rate} clips, {CROP} crop, {args.batches} timed batches")
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
