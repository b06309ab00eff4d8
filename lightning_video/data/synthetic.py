"""Synthetic video tasks whose labels need exactly what each ablation tests, written as real H.264 mp4.

- `motion` (like SSv2's "pushing something left to right" and its mirror): the label is whether an object moves
  left or right, along an axis drawn up to 60° off horizontal. Position wraps around the frame (a torus), so the
  object's position is uniform in every frame whatever the class, and colour, shape, size and speed are random: no
  single frame says anything about the label. Nor do the frames as an unordered set: `left` is `right` played
  backwards, so only the order tells them apart and space-only attention (which averages frames) is at chance.
  (An earlier 8-direction task leaked the axis of motion through the unordered frames, so space-only beat chance.)
- `appearance` (like Kinetics): the label is the object's shape and colour family, visible in any frame;
  the motion is random.
- `location` (an image task, the stand-in for ImageNet in front of `motion`): the label is which cell of a 4 × 4
  grid holds a still object's centre. Image pretraining on it gives a model positions that mean something, which
  `motion` needs from every scheme that does not compare a patch only with itself across time.
- `long_range`: the label is the order of two brief coloured flashes separated by `gap` frames, so a
  clip shorter than the gap cannot see both.

Output (the Kinetics CSV layout PyTorchVideo reads): `OUT/{train,val,test}/<class>/<name>.mp4`,
`OUT/{train,val,test}.csv` with `relative/path.mp4 <label>` lines, `OUT/classes.txt` (line i is the
name of label i; names sort in label order, so the folders also read as a folder-per-class dataset) and
`OUT/synthetic.json` with the generation settings. Every video is seeded from (seed, split, label, index):
the same arguments give the same videos.

    python -m lightning_video.data.synthetic --task motion --out data/motion
"""
from __future__ import annotations

import argparse
import colorsys
import json
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

SPLITS = ("train", "val", "test")
SHAPES = ("circle", "square", "triangle", "diamond")
MOTION_CLASSES = ("left", "right")
MAX_TILT = np.pi / 3  # a `right` object moves at most 60° off horizontal, so its horizontal sign always shows
APPEARANCE_SHAPES = ("circle", "square", "triangle")
COLOUR_FAMILIES = {"blue": 0.62, "red": 0.0}  # hue centres
FLASH_COLOURS = {"blue": (40, 90, 255), "red": (255, 40, 40)}
LONG_RANGE_CLASSES = ("blue_then_red", "red_then_blue")


def _offsets(size: int, centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of every pixel from `centre`, measured around the torus."""
    coords = np.arange(size)
    dy = (coords[:, None] - centre[0] + size / 2) % size - size / 2
    dx = (coords[None, :] - centre[1] + size / 2) % size - size / 2
    return dy, dx


def shape_mask(shape: str, size: int, centre: tuple[float, float], radius: float) -> np.ndarray:
    """Boolean `[size, size]` mask of a shape centred at `centre` on a frame that wraps around."""
    dy, dx = _offsets(size, centre)
    if shape == "circle":
        return dy**2 + dx**2 <= radius**2
    if shape == "square":
        return (np.abs(dy) <= radius * 0.85) & (np.abs(dx) <= radius * 0.85)
    if shape == "triangle":
        return (dy <= radius * 0.8) & (dy >= -radius) & (np.abs(dx) <= (dy + radius) * 0.6)
    if shape == "diamond":
        return np.abs(dy) + np.abs(dx) <= radius
    raise ValueError(f"unknown shape {shape!r}; valid: {', '.join(SHAPES)}")


def _bright_colour(rng: np.random.Generator, hue: float | None = None) -> np.ndarray:
    hue = rng.random() if hue is None else hue % 1.0
    return np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.7, 1.0), rng.uniform(0.8, 1.0))) * 255


def _moving_object(rng: np.random.Generator, size: int, frames: int, shape: str, colour: np.ndarray,
                   velocity: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    """`[frames, size, size, 3]` uint8: an object from `start` (default uniform random) moving at `velocity`,
    wrapping."""
    background = rng.uniform(0, 50, size=3)
    radius = rng.uniform(0.12, 0.18) * size
    start = rng.uniform(0, size, size=2) if start is None else start
    video = np.empty((frames, size, size, 3), dtype=np.uint8)
    for t in range(frames):
        mask = shape_mask(shape, size, tuple(start + velocity * t), radius)
        video[t] = np.where(mask[..., None], colour, background).astype(np.uint8)
    return video


def _velocity(rng: np.random.Generator, angle: float, size: int) -> np.ndarray:
    """(rows, columns) pixels per frame along `angle` (0 is rightwards). The speed, 1–1.6 px at 32 px, keeps an
    8-frame clip from wrapping around the frame most of the time, which would hide the direction from attention that
    compares positions."""
    return np.array([np.sin(angle), np.cos(angle)]) * rng.uniform(0.03, 0.05) * size


def render_motion(rng: np.random.Generator, label: int, size: int, frames: int, gap: int) -> np.ndarray:
    """Both classes draw the axis of motion from the same range, so only the order of the frames tells them apart."""
    angle = rng.uniform(-MAX_TILT, MAX_TILT) + (np.pi if MOTION_CLASSES[label] == "left" else 0.0)
    velocity = _velocity(rng, angle, size)
    return _moving_object(rng, size, frames, rng.choice(SHAPES), _bright_colour(rng), velocity)


def appearance_classes() -> list[str]:
    return sorted(f"{colour}_{shape}" for colour in COLOUR_FAMILIES for shape in APPEARANCE_SHAPES)


def render_appearance(rng: np.random.Generator, label: int, size: int, frames: int, gap: int) -> np.ndarray:
    colour_name, shape = appearance_classes()[label].split("_")
    colour = _bright_colour(rng, COLOUR_FAMILIES[colour_name] + rng.uniform(-0.05, 0.05))
    velocity = _velocity(rng, rng.uniform(0, 2 * np.pi), size)
    return _moving_object(rng, size, frames, shape, colour, velocity)


LOCATION_CELLS = 4  # `location` labels a LOCATION_CELLS × LOCATION_CELLS grid of cells


def location_classes() -> list[str]:
    return [f"row{row}_col{column}" for row in range(LOCATION_CELLS) for column in range(LOCATION_CELLS)]


def render_location(rng: np.random.Generator, label: int, size: int, frames: int, gap: int) -> np.ndarray:
    """A still object whose centre lies in cell `label` (row-major), anywhere in it."""
    cell = np.array(divmod(label, LOCATION_CELLS))
    start = (cell + rng.uniform(0, 1, size=2)) * size / LOCATION_CELLS
    return _moving_object(rng, size, frames, rng.choice(SHAPES), _bright_colour(rng), np.zeros(2), start)


FLASH_FRAMES = 3


def render_long_range(rng: np.random.Generator, label: int, size: int, frames: int, gap: int) -> np.ndarray:
    """A grey distractor drifts all along; two flashes of `FLASH_FRAMES` frames each, `gap` frames apart."""
    velocity = _velocity(rng, rng.uniform(0, 2 * np.pi), size)
    video = _moving_object(rng, size, frames, rng.choice(SHAPES), np.full(3, rng.uniform(90, 160)), velocity)
    first, second = LONG_RANGE_CLASSES[label].split("_then_")
    first_start = int(rng.integers(0, frames - gap - 2 * FLASH_FRAMES + 1))
    for colour, start in ((first, first_start), (second, first_start + FLASH_FRAMES + gap)):
        mask = shape_mask("square", size, tuple(rng.uniform(0, size, size=2)), 0.2 * size)
        video[start:start + FLASH_FRAMES][:, mask] = FLASH_COLOURS[colour]
    return video


Renderer = Callable[[np.random.Generator, int, int, int, int], np.ndarray]
TASKS: dict[str, tuple[list[str], Renderer]] = {
    "motion": (list(MOTION_CLASSES), render_motion),
    "appearance": (appearance_classes(), render_appearance),
    "long_range": (list(LONG_RANGE_CLASSES), render_long_range),
    "location": (location_classes(), render_location),
}
DEFAULT_FRAMES = {"motion": 16, "appearance": 16, "long_range": 48, "location": 4}


def task_classes(task: str) -> list[str]:
    if task not in TASKS:
        raise ValueError(f"unknown synthetic task {task!r}; valid: {', '.join(TASKS)}")
    return TASKS[task][0]


def write_mp4(path: Path, video: np.ndarray, fps: int) -> None:
    """Encode `[T, H, W, 3]` uint8 RGB frames as H.264, near-lossless. One thread and no lookahead: x264 otherwise
    makes load-dependent choices and the same seed would not give the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = video.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "10", "tune": "zerolatency", "x264-params": "threads=1:lookahead-threads=1"}
        for frame in video:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def split_sizes(videos_per_class: int) -> dict[str, int]:
    """Videos per class in each split: `videos_per_class` for training, a quarter of it (≥ 2) for val and test."""
    held_out = max(2, videos_per_class // 4)
    return {"train": videos_per_class, "val": held_out, "test": held_out}


def generate(task: str, out: str | Path, videos_per_class: int = 100, seed: int = 0, size: int = 32,
             frames: int | None = None, fps: int = 10, gap: int = 24) -> Path:
    """Write a synthetic task to `out` (see the module docstring) and return `out`.

    Args:
        task: "motion", "appearance", "long_range" or "location".
        out: output folder; created, and overwritten file by file if it exists.
        videos_per_class: training videos per class (val and test get a quarter as many, at least 2).
        seed: the videos are a function of the seed and the other arguments.
        size: frame height and width in pixels (even, for H.264's 4:2:0 chroma).
        frames: frames per video (default 16; 48 for `long_range`, 4 for `location`).
        fps: frame rate written in the file.
        gap: frames between the two flashes of `long_range`.
    """
    classes, render = task_classes(task), TASKS[task][1]
    frames = frames or DEFAULT_FRAMES[task]
    if size < 8 or size % 2:
        raise ValueError(f"size={size}: use an even size of at least 8 pixels (H.264 4:2:0 needs even sizes)")
    if task == "long_range" and frames < gap + 2 * FLASH_FRAMES:
        raise ValueError(f"long_range needs frames >= gap + {2 * FLASH_FRAMES} (two flashes); got frames={frames}, "
                         f"gap={gap}: raise --frames or lower --gap")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("".join(f"{name}\n" for name in classes))
    for split_id, (split, count) in enumerate(split_sizes(videos_per_class).items()):
        lines = []
        for label, name in enumerate(classes):
            for index in range(count):
                rng = np.random.default_rng([seed, split_id, label, index])
                relative = f"{split}/{name}/{name}_{index:05d}.mp4"
                write_mp4(out / relative, render(rng, label, size, frames, gap), fps)
                lines.append(f"{relative} {label}\n")
        (out / f"{split}.csv").write_text("".join(lines))
    settings = dict(task=task, videos_per_class=videos_per_class, seed=seed, size=size, frames=frames, fps=fps, gap=gap)
    (out / "synthetic.json").write_text(json.dumps(settings, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--task", required=True, choices=sorted(TASKS))
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--videos-per-class", type=int, default=100,
                        help="training videos per class; val and test get a quarter as many (at least 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=32, help="frame side in pixels (even)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per video (default: 16, long_range 48, location 4)")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--gap", type=int, default=24, help="long_range: frames between the two flashes")
    args = parser.parse_args(argv)
    out = generate(args.task, args.out, args.videos_per_class, args.seed, args.size, args.frames, args.fps, args.gap)
    counts = {split: len((out / f"{split}.csv").read_text().splitlines()) for split in SPLITS}
    print(f"wrote {args.task} to {out}: {counts} videos, {len(TASKS[args.task][0])} classes")


if __name__ == "__main__":
    main()
