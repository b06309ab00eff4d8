"""`lightning-video prepare SRC DST`: a copy of a dataset whose videos decode fast at random clip starts.

Loading is decode-bound: a clip of 8 frames at rate 32 seeks to the keyframe before each wanted frame and decodes
every frame it depends on. Kinetics as downloaded has a keyframe every 60–250 frames and a short side of 240–1080+
pixels, of which training uses a random 256–320 rescale. This re-encodes every video (H.264, libx264 from PyAV's
wheel) to a short side of `--short-side` (default 320; never enlarged) with a keyframe every `--keyframe-interval`
frames, and copies every other file (annotation CSVs and JSONs, classes.txt, frame folders) as it is, under the same
relative paths: the annotations keep pointing at the right files, and `data.root DST` trains on the copy.

**Chosen encoding** (`DEFAULT_ENCODING`; measured by `python -m experiments.bench data --encodings` on Kinetics-like
videos with a keyframe every 60 frames, numbers in `docs/results/notes/bench_data_cpu.md`): a keyframe every 8
frames, `tune fastdecode`, no B-frames, preset `medium`, crf 23. Clips/s at 8×32 rises as the keyframe interval
falls (a wanted frame needs fewer frames decoded before it: at most 8 here, against up to 60) and the size rises
with it: all-intra was the fastest (6.3× the original) but 6.2× its size; a keyframe every 8 kept most of the speed
(4.7×) within the size budget of ~3× the original (2.6×), every 16 lost speed (4.0×). `fastdecode` (no CABAC, no
deblocking filter) is what makes the frames cheap: without it the same interval gave 2.1×. B-frames (which our
reader skips when unwanted) saved size but not time. Preset `medium` against `veryfast`: the same speed, 8% smaller
and closer to the original (PSNR 31.4 against 29.4 dB on the benchmark's noise texture, its worst case); it encodes
slower, once. crf 18 cost 45% more size for no speed.

Safe to stop and rerun: each output is written under a temporary name and renamed when it is complete and checked,
so an output under its final name is finished, and a rerun skips it. Every output is decoded in full and must have
the source's frame count (the count sampling uses); a video that fails (unreadable source, frame-count mismatch) is
listed with its reason in `DST/prepare_failures.json`, gets no output, and makes the exit status 1. The source is
only read. Audio is dropped (the models use none); a display rotation is applied to the pixels, so frames stay
upright; the frame rate is kept (a variable-rate source becomes constant-rate with the same frames).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.video.reformatter import Interpolation, VideoReformatter
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lightning_video.data.decode import UnreadableVideo, VideoReader, _upright
from lightning_video.data.layouts import VIDEO_SUFFIXES

PARTIAL = ".partial"  # in the temporary name of an output being written
FAILURES = "prepare_failures.json"
# Under its own name (the annotations list it), a video goes into a Matroska container where its own would not do:
# WebM admits only VP8/VP9/AV1, and AVI has no presentation times (H.264 in it came out one frame off after a seek).
# Readers (FFmpeg, PyAV, decord) find the container from the file's contents, not its name.
CONTAINER_FORMATS = {".webm": "matroska", ".avi": "matroska"}


@dataclass(frozen=True)
class Encoding:
    """libx264 settings of a prepared video.

    Args:
        keyframe_interval: frames from one keyframe to the next (1: every frame a keyframe).
        preset: x264 speed preset (encoding speed against size at a given quality).
        crf: constant rate factor (quality: lower is better and larger; 23 is x264's default).
        tune: x264 tuning ("fastdecode": no CABAC, no deblocking filter; None: none).
        b_frames: B-frames between reference frames.
    """

    keyframe_interval: int = 8
    preset: str = "medium"
    crf: int = 23
    tune: str | None = "fastdecode"
    b_frames: int = 0

    def options(self) -> dict[str, str]:
        """The encoder options; one thread, since the workers give the parallelism, and no scene-cut keyframes, so
        that the interval is what was measured."""
        options = {"g": str(self.keyframe_interval), "keyint_min": str(self.keyframe_interval),
                   "sc_threshold": "0", "preset": self.preset, "crf": str(self.crf), "bf": str(self.b_frames),
                   "threads": "1"}
        if self.tune:
            options["tune"] = self.tune
        return options


DEFAULT_ENCODING = Encoding()


@dataclass
class Outcome:
    """What became of one source file: `status` is "written", "copied", "skipped" (finished before) or "failed"."""

    path: str
    status: str
    reason: str = ""
    frames: int = 0


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Width and height with the short side at most `short_side`, the aspect ratio kept, both even (4:2:0)."""
    scale = min(1.0, short_side / min(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def count_frames(path: Path) -> tuple[int, int]:
    """(frames the reader counts from the header or the duration, which sampling uses; frames that decode)."""
    with VideoReader(path) as reader:
        counted = reader.num_frames
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return counted, sum(1 for _ in container.decode(stream))


def transcode(source: Path, target: Path, encoding: Encoding = DEFAULT_ENCODING,
              short_side: int = 320) -> tuple[int, int]:
    """Write `source`'s video re-encoded to `target` (see the module docstring); (frames in the source's header, 0 if
    it gives none; frames decoded and written)."""
    with av.open(str(source)) as reader:
        if not reader.streams.video:
            raise ValueError("no video stream")
        stream = reader.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        if not rate:
            raise ValueError("no frame rate in the video stream")
        with av.open(str(target), mode="w", format=CONTAINER_FORMATS.get(target.suffix.lower())) as writer:
            return stream.frames, _encode(reader.decode(stream), writer, Fraction(rate), encoding, short_side)


def _encode(frames: Iterator[av.VideoFrame], writer: av.container.OutputContainer, rate: Fraction,
            encoding: Encoding, short_side: int) -> int:
    reformatter, out, index = VideoReformatter(), None, 0
    for index, frame in enumerate(frames):
        if frame.rotation and round(frame.rotation / 90) % 4:
            frame = av.VideoFrame.from_ndarray(_upright(frame).copy(), format="rgb24")
        if out is None:
            out = writer.add_stream("libx264", rate=rate, options=encoding.options())
            out.width, out.height = scaled_size(frame.width, frame.height, short_side)
            out.pix_fmt = "yuv420p"
        scaled = reformatter.reformat(frame, width=out.width, height=out.height, format="yuv420p",
                                      interpolation=Interpolation.AREA)
        scaled.pts, scaled.time_base = index, 1 / rate
        writer.mux(out.encode(scaled))
    if out is None:
        raise ValueError("no frames decoded")
    writer.mux(out.encode())
    return index + 1


def prepare_file(source: Path, target: Path, encoding: Encoding, short_side: int) -> Outcome:
    """Make `target` from `source` (a video re-encoded and checked, any other file copied) through a temporary name;
    a finished `target` is kept as it is."""
    if target.exists():
        return Outcome(str(source), "skipped")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.stem}{PARTIAL}-{os.getpid()}{target.suffix}")
    try:
        if source.suffix.lower() not in VIDEO_SUFFIXES:
            shutil.copy2(source, partial)
            partial.replace(target)
            return Outcome(str(source), "copied")
        try:
            listed, written = transcode(source, partial, encoding, short_side)
            prepared = count_frames(partial)
        except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError, UnreadableVideo) as error:
            return Outcome(str(source), "failed", f"cannot read or write it: {error}")
        if listed not in (0, written) or not written == prepared[0] == prepared[1]:
            return Outcome(str(source), "failed",
                           f"frame counts differ: source {written} decoded ({listed or 'none'} in its header), "
                           f"prepared {prepared[1]} decoded ({prepared[0]} by its header or duration)")
        partial.replace(target)
        return Outcome(str(source), "written", frames=written)
    finally:
        partial.unlink(missing_ok=True)


def source_files(source: Path, target: Path) -> list[Path]:
    """Every file under `source` (relative), but none under `target` if it lies inside, and no leftover partials."""
    files = []
    for path in sorted(source.rglob("*")):
        if path.is_file() and target not in path.parents and PARTIAL not in path.name:
            files.append(path.relative_to(source))
    return files


def prepare(source: Path, target: Path, encoding: Encoding = DEFAULT_ENCODING, short_side: int = 320,
            workers: int = 1, progress: bool = True) -> list[Outcome]:
    """Prepare every file of `source` into `target` (see the module docstring); the outcome of each."""
    if not source.is_dir():
        raise FileNotFoundError(f"prepare: the source folder {source} does not exist")
    if source.resolve() == target.resolve():
        raise ValueError(f"prepare: SRC and DST are both {source}; the originals are never modified: give another DST")
    files = source_files(source.resolve(), target.resolve())
    jobs = [(source / file, target / file, encoding, short_side) for file in files]
    columns = (TextColumn("prepare"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar, ProcessPoolExecutor(max(workers, 1)) as pool:
        task = bar.add_task("prepare", total=len(jobs))
        futures = [pool.submit(prepare_file, *job) for job in jobs]
        for future in as_completed(futures):
            future.result()
            bar.advance(task)
    return [future.result() for future in futures]


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightning-video prepare", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, metavar="SRC", help="dataset folder as downloaded (only read)")
    parser.add_argument("target", type=Path, metavar="DST", help="where to write the prepared copy")
    parser.add_argument("--short-side", type=int, default=320, help="short side of prepared videos (default 320)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel processes (default: CPUs)")
    parser.add_argument("--keyframe-interval", type=int, default=DEFAULT_ENCODING.keyframe_interval)
    parser.add_argument("--preset", default=DEFAULT_ENCODING.preset, help="x264 preset")
    parser.add_argument("--crf", type=int, default=DEFAULT_ENCODING.crf, help="x264 constant rate factor")
    parser.add_argument("--tune", default=DEFAULT_ENCODING.tune, help="x264 tune ('none' for none)")
    parser.add_argument("--b-frames", type=int, default=DEFAULT_ENCODING.b_frames)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in batch jobs)")
    return parser


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.short_side < 2 or args.keyframe_interval < 1 or args.workers < 1:
        raise SystemExit("prepare: --short-side must be at least 2, --keyframe-interval and --workers at least 1")
    encoding = Encoding(args.keyframe_interval, args.preset, args.crf, None if args.tune == "none" else args.tune,
                        args.b_frames)
    outcomes = prepare(args.source, args.target, encoding, args.short_side, args.workers, not args.no_progress)
    counts = {status: sum(outcome.status == status for outcome in outcomes)
              for status in ("written", "copied", "skipped", "failed")}
    print(f"prepare {args.source} -> {args.target}: " + ", ".join(f"{count} {status}" for status, count in
                                                                  counts.items()))
    failures = [asdict(outcome) for outcome in outcomes if outcome.status == "failed"]
    failures_file = args.target / FAILURES
    if failures:
        failures_file.write_text(json.dumps({"encoding": asdict(encoding), "failed": failures}, indent=2) + "\n")
        for failure in failures[:10]:
            print(f"  failed: {failure['path']}: {failure['reason']}")
        print(f"{len(failures)} failed, listed in {failures_file}; fix or remove them and rerun (finished files are "
              f"skipped)")
        return 1
    failures_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
