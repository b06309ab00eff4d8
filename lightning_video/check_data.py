"""`python -m lightning_video check-data --config FILE`: audit a dataset before training on it.

It reads the `data:` section of the same config file `fit` takes (other sections are ignored; `--data.*` options
override it), checks every split's annotation files and decodes every frame of every video of every split that
exists, in `data.num_workers` processes. It prints a table, per split, of the videos listed, found, missing,
unreadable and too short for one clip (fewer frames than `data.num_frames` × `data.sampling_rate`, or `num_frames`
with segment sampling: its clips repeat frames), and the same video in two splits (for Kinetics the same YouTube id,
else the same file), and writes all of it, each file named, as JSON (`--out`, by default in `runs/check-data/`).

A listed video that is absent is missing. Kinetics leaves it out of the split (every copy misses some); the other
layouts keep it, so training meets it as unreadable, and it is counted in both columns. The exit status is 1 when a
video that training or testing would read is unreadable, or a split cannot be read (a missing file, or every problem
of its annotation files); missing, too short and shared videos are reported but do not fail the audit.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml
from jsonargparse import ArgumentParser
from rich.console import Console
from rich.progress import track

from lightning_video.data import layouts
from lightning_video.data.annotations import AnnotationError
from lightning_video.data.datamodule import VideoDataModule
from lightning_video.data.decode import open_video, unreadable_reason
from lightning_video.data.layouts import LAYOUTS, SPLITS

COLUMNS = ("listed", "found", "missing", "unreadable", "too_short")
SHOWN = 10  # files printed per kind of problem; the JSON has them all


def frames_per_clip(data: VideoDataModule) -> int:
    """The frames one clip spans (`sampling`): fewer, and the clip repeats frames."""
    return data.num_frames if data.sampling == "segments" else data.num_frames * data.sampling_rate


def video_frames(path: str) -> tuple[str | None, int]:
    """(why the video cannot be read in full, 0), or (None, its frame count)."""
    reason = unreadable_reason(path)
    if reason is not None:
        return reason, 0
    with open_video(path) as reader:
        return None, reader.num_frames


def decode_all(paths: list[str], workers: int) -> list[tuple[str | None, int]]:
    """`video_frames` of every path, in `workers` processes (0: this one), with a progress bar on stderr."""
    progress = dict(description="decoding", total=len(paths), console=Console(stderr=True))
    if workers == 0:
        return list(track(map(video_frames, paths), **progress))
    with ProcessPoolExecutor(workers) as pool:
        return list(track(pool.map(video_frames, paths, chunksize=4), **progress))


def audit(data: VideoDataModule, workers: int) -> dict:
    """The audit of `data`'s splits (see the module docstring) as a JSON-ready dict."""
    splits, lists = {}, {}
    for split in SPLITS:
        try:
            lists[split] = layouts.read(data.dataset, data.root, split, data.fold)
        except (FileNotFoundError, AnnotationError) as error:
            splits[split] = {"error": str(error)}
    used = {split: [path for path, _ in videos.videos] for split, videos in lists.items()}
    paths = sorted({path for split_paths in used.values() for path in split_paths})
    frames_needed = frames_per_clip(data)
    decoded = dict(zip(paths, decode_all(paths, workers)))
    unreadable = {path: reason for path, (reason, _) in decoded.items() if reason is not None}
    too_short = {path: frames for path, (reason, frames) in decoded.items()
                 if reason is None and frames < frames_needed}
    missing = {split: videos.missing + [path for path in used[split] if not Path(path).exists()]
               for split, videos in lists.items()}
    for split, videos in lists.items():
        splits[split] = {"listed": videos.listed, "found": videos.listed - len(missing[split]),
                         "missing": len(missing[split]), "unreadable": sum(path in unreadable for path in used[split]),
                         "too_short": sum(path in too_short for path in used[split])}

    def with_splits(found: Iterable[str], of: dict[str, list[str]]) -> list[dict]:
        return [{"path": path, "splits": [split for split, split_paths in of.items() if path in split_paths]}
                for path in found]

    return {"dataset": data.dataset, "root": str(data.root), "videos": len(paths), "frames_per_clip": frames_needed,
            "splits": {split: splits[split] for split in SPLITS},
            "missing": with_splits(sorted({path for paths in missing.values() for path in paths}), missing),
            "unreadable": [{**entry, "reason": unreadable[entry["path"]]} for entry in with_splits(unreadable, used)],
            "too_short": [{**entry, "frames": too_short[entry["path"]]} for entry in with_splits(too_short, used)],
            "duplicates": duplicates(used, missing, LAYOUTS[data.dataset].video_id)}


def duplicates(used: dict[str, list[str]], missing: dict[str, list[str]], video_id: Callable[[str], str]) -> list[dict]:
    """The videos found in more than one split, by `video_id`; a split that lists the very videos of another (val
    and test of datasets that validate on their test split) is not compared with it."""
    seen: dict[str, dict[str, list[str]]] = {}
    distinct: list[str] = []
    for split, paths in used.items():
        if any(paths == used[other] for other in distinct):
            continue
        distinct.append(split)
        for path in sorted(set(paths) - set(missing[split])):
            seen.setdefault(video_id(path), {}).setdefault(split, []).append(path)
    return [{"video": video, "splits": in_splits} for video, in_splits in sorted(seen.items()) if len(in_splits) > 1]


def report(manifest: dict) -> str:
    """The audit as text: the table, then the first files of each kind of problem."""
    lines = [f"{manifest['dataset']} at {manifest['root']}: one clip spans {manifest['frames_per_clip']} frames",
             f"{'split':<6}" + "".join(f"{column.replace('_', ' '):>12}" for column in COLUMNS)]
    for split, counts in manifest["splits"].items():
        lines.append(f"{split}: cannot be read: {counts['error']}" if "error" in counts else
                     f"{split:<6}" + "".join(f"{counts[column]:>12,}" for column in COLUMNS))
    for kind, detail in (("missing", lambda entry: ""), ("unreadable", lambda entry: f": {entry['reason']}"),
                         ("too_short", lambda entry: f": {entry['frames']} frames")):
        entries = manifest[kind]
        if entries:
            lines.append(f"{kind.replace('_', ' ')}: {len(entries):,}")
            lines += [f"  {entry['path']} ({', '.join(entry['splits'])}){detail(entry)}" for entry in entries[:SHOWN]]
    if manifest["duplicates"]:
        lines.append(f"the same video in two splits: {len(manifest['duplicates']):,}")
        lines += [f"  {entry['video']}: " + "; ".join(f"{split} {', '.join(paths)}" for split, paths in
                                                      entry["splits"].items())
                  for entry in manifest["duplicates"][:SHOWN]]
    lines.append(f"{len(manifest['unreadable']):,} of the {manifest['videos']:,} videos unreadable")
    return "\n".join(lines)


def default_out(data: VideoDataModule) -> Path:
    """`runs/check-data/<root folder>_<dataset>.json`, beside the runs (the dataset folder may be read-only)."""
    return Path("runs/check-data") / f"{Path(data.root).resolve().name}_{data.dataset}.json"


def parser(config: dict) -> ArgumentParser:
    parser = ArgumentParser(prog="python -m lightning_video check-data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=str, default=None, help="a fit config; its data: section is read")
    parser.add_argument("--out", type=str | None, default=None,
                        help="where to write the audit as JSON (default: runs/check-data/<root>_<dataset>.json)")
    parser.add_class_arguments(VideoDataModule, "data")
    parser.set_defaults({f"data.{key}": value for key, value in config.get("data", {}).items()})
    return parser


def main(argv: list[str]) -> int:
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--config")
    config_file = first.parse_known_args(argv)[0].config
    config = (yaml.safe_load(Path(config_file).read_text()) or {}) if config_file else {}
    checker = parser(config)
    args = checker.parse_args(argv)
    data = checker.instantiate(args).data
    if data.root is None:
        raise SystemExit("check-data needs data.root: set it in the config's data: section or with --data.root")
    manifest = audit(data, data.num_workers)
    out = Path(args.out) if args.out else default_out(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(manifest, indent=2) + "\n")
    print(report(manifest))
    print(f"audit: {out.resolve()}")
    return int(bool(manifest["unreadable"]) or any("error" in counts for counts in manifest["splits"].values()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
