"""Prepared videos (`lightning-video prepare`) against their originals: copies in an encoding, their size, and
whether they hold the same frames (the index codes read back, and the pixel error against the original resized)."""
from __future__ import annotations

from multiprocessing import Pool
from pathlib import Path

import torch
import torch.nn.functional as F

from experiments.bench.kinetics_like import read_codes
from lightning_video.data.decode import open_video
from lightning_video.data.sampling import clip_indices
from lightning_video.prepare import DEFAULT_ENCODING, Encoding, transcode

# The encodings `--encodings` compares: keyframe intervals at the chosen settings, then one setting changed at a time.
ENCODINGS = [Encoding(keyframe_interval=interval) for interval in (1, 2, 4, 8, 16)] + [
    Encoding(tune=None), Encoding(tune=None, b_frames=3), Encoding(preset="veryfast"), Encoding(crf=18)]


def describe(encoding: Encoding) -> str:
    chosen = " (chosen)" if encoding == DEFAULT_ENCODING else ""
    return (f"keyframe every {encoding.keyframe_interval}, {encoding.preset}, crf {encoding.crf}, "
            f"tune {encoding.tune}, {encoding.b_frames} B-frames{chosen}")


def prepare_copies(paths: list[Path], folder: Path, encoding: Encoding, short_side: int, workers: int) -> list[Path]:
    """`paths` re-encoded into `folder` as `prepare` does, in parallel."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = [folder / path.name for path in paths]
    with Pool(max(workers, 1)) as pool:
        pool.starmap(transcode, [(path, copy, encoding, short_side) for path, copy in zip(paths, copies)])
    return copies


def size_ratio(originals: list[Path], copies: list[Path]) -> float:
    return sum(path.stat().st_size for path in copies) / sum(path.stat().st_size for path in originals)


def frame_agreement(original: Path, prepared: Path, frames: int, rate: int) -> tuple[bool, float, float]:
    """For clips at the start, middle and end of the video: whether the prepared clip holds the same frames (index
    codes, read at the original's size), and the PSNR (dB) and mean absolute error (of 255) of its pixels against
    the original's frames resized to the prepared size (area interpolation, as `prepare` scales)."""
    with open_video(original) as source, open_video(prepared) as copy:
        if copy.num_frames != source.num_frames:
            return False, 0.0, 255.0
        span = max(source.num_frames - frames * rate, 0)
        indices = [int(i) for start in (0, span // 2, span) for i in clip_indices(source.num_frames, frames, rate,
                                                                                    start)]
        theirs = source.read(indices).permute(3, 0, 1, 2).float()  # [C, T, H, W]
        ours = copy.read(indices).permute(3, 0, 1, 2).float()
    same_frames = read_codes(F.interpolate(ours, size=theirs.shape[-2:], mode="bilinear")) == read_codes(theirs)
    reference = F.interpolate(theirs, size=ours.shape[-2:], mode="area")
    error = (ours - reference).abs()
    psnr = 10 * torch.log10(255**2 / error.square().mean().clamp(min=1e-10)).item()
    return same_frames, psnr, error.mean().item()
