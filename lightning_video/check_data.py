"""`python -m lightning_video check-data --config FILE`: find a dataset's unreadable videos before training on it.

Training replaces an unreadable video and counts it, and stops past `data.max_skip_fraction`; this command says
which files they are. It reads the `data:` section of the same config file `fit` takes (other sections are
ignored; `--data.*` options override it), checks every split's annotation files, decodes every frame of every video
of every split that exists, and writes a JSON manifest: per split, how many videos and how many unreadable (or why
the split could not be read: a missing file, or every problem of its annotation files), and each unreadable file
with the reason and its splits. The exit status is 1 when a video is unreadable or a split cannot be read.
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml
from jsonargparse import ArgumentParser

from lightning_video.data.annotations import AnnotationError
from lightning_video.data.datamodule import VideoDataModule
from lightning_video.data.decode import unreadable_reason
from lightning_video.data.layouts import SPLITS


def scan(data: VideoDataModule, workers: int) -> dict:
    """The manifest of `data`'s splits (see the module docstring)."""
    splits, paths_of_split = {}, {}
    for split in SPLITS:
        try:
            paths_of_split[split] = [path for path, _ in data.videos(split)]
        except (FileNotFoundError, AnnotationError) as error:
            splits[split] = {"error": str(error)}
    paths = sorted({path for split_paths in paths_of_split.values() for path in split_paths})
    if workers > 0:
        with ProcessPoolExecutor(workers) as pool:
            reasons = list(pool.map(unreadable_reason, paths, chunksize=16))
    else:
        reasons = [unreadable_reason(path) for path in paths]
    bad = {path: reason for path, reason in zip(paths, reasons) if reason is not None}
    for split, split_paths in paths_of_split.items():
        splits[split] = {"videos": len(split_paths), "unreadable": sum(path in bad for path in split_paths)}
    unreadable = [{"path": path, "reason": reason,
                   "splits": [split for split, split_paths in paths_of_split.items() if path in split_paths]}
                  for path, reason in bad.items()]
    return {"dataset": data.dataset, "root": str(data.root), "videos": len(paths), "splits": splits,
            "unreadable": unreadable}


def parser(config: dict) -> ArgumentParser:
    parser = ArgumentParser(prog="python -m lightning_video check-data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=str, default=None, help="a fit config; its data: section is read")
    parser.add_argument("--out", type=str, default="unreadable.json", help="where to write the manifest")
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
    manifest = scan(data, data.num_workers)
    out = Path(args.out)
    out.write_text(json.dumps(manifest, indent=2) + "\n")
    for split, counts in manifest["splits"].items():
        print(f"{split}: {counts['error']}" if "error" in counts else
              f"{split}: {counts['videos']} videos, {counts['unreadable']} unreadable")
    for entry in manifest["unreadable"][:10]:
        print(f"  {entry['path']}: {entry['reason']}")
    print(f"{len(manifest['unreadable'])} of the {manifest['videos']} videos unreadable")
    print(f"manifest: {out}")
    return int(bool(manifest["unreadable"]) or any("error" in counts for counts in manifest["splits"].values()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
