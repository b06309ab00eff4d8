"""Data under 2-process CPU DDP (gloo): each rank reads a disjoint, equal share, reshuffled every epoch; per-video
test metrics equal a single process's; a rank whose videos are all unreadable neither stalls nor hangs the other.

The samplers are the DistributedSamplers Lightning puts on the map-style datasets; the ranks run in spawned
processes with a deadline, so a hang fails the test instead of blocking the suite.
"""
from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, DistributedSampler

from lightning_video.data.datamodule import VideoDataModule
from lightning_video.data.dataset import VideoClipDataset
from lightning_video.data.transforms import evaluation_transform
from lightning_video.training.metrics import VideoPredictions, classification_metrics

CLASSES = 8
DEADLINE_S = 120


def probabilities(video: torch.Tensor) -> torch.Tensor:
    """A fixed 'model': class probabilities from the clip's mean colour per frame, the same on every process."""
    weights = torch.randn(3 * 4, CLASSES, generator=torch.Generator().manual_seed(0))
    return (video.mean(dim=(-1, -2)).flatten(1) @ weights).softmax(dim=-1)


def score_views(videos: list[tuple[str, int]], rank: int, world: int) -> dict:
    """The per-video probabilities and metrics of this rank's share of 3 clips per video, gathered over ranks."""
    dataset = VideoClipDataset(videos, num_frames=4, sampling_rate=2, transform=evaluation_transform(16, 1, (0.5,) * 3,
                                                                                                     (0.5,) * 3),
                               train=False, clips_per_video=3)
    loader = DataLoader(dataset, batch_size=4, sampler=DistributedSampler(dataset, world, rank, shuffle=False))
    predictions = VideoPredictions()
    for batch in loader:
        valid = batch["valid"]
        predictions.update(probabilities(batch["video"][valid]), batch["label"][valid], batch["video_index"][valid],
                           batch["clip_index"][valid], batch["aug_index"][valid])
    per_video = predictions.compute()
    metrics = classification_metrics(CLASSES, multi_label=False)(per_video.probs, per_video.labels)
    return {"videos": per_video.videos, "probs": per_video.probs, **metrics}


class GlooDecision:
    """Lightning's DDP `reduce_boolean_decision`, on the process group of the test."""

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        votes = torch.tensor(int(decision))
        dist.all_reduce(votes)
        return bool(votes == dist.get_world_size()) if all else bool(votes > 0)


def train_epoch(videos: list[tuple[str, int]], rank: int, world: int, max_skip_fraction: float) -> dict:
    """One epoch of this rank's share with a gradient-like all-reduce per step and the datamodule's skip guard."""
    dataset = VideoClipDataset(videos, num_frames=4, sampling_rate=2, transform=evaluation_transform(16, 1, (0.5,) * 3,
                                                                                                    (0.5,) * 3),
                               train=True)
    loader = DataLoader(dataset, batch_size=2, sampler=DistributedSampler(dataset, world, rank, shuffle=False))
    data = VideoDataModule(batch_size=2, max_skip_fraction=max_skip_fraction)
    data.trainer = SimpleNamespace(training=True, current_epoch=0, num_training_batches=len(loader),
                                   strategy=GlooDecision())
    steps, skipped = 0, 0
    try:
        for batch in loader:
            data.on_after_batch_transfer(batch, 0)
            dist.all_reduce(torch.ones(1))  # what DDP's backward does every step
            steps, skipped = steps + 1, skipped + int(batch["skipped"].sum())
    except RuntimeError as error:
        return {"steps": steps, "skipped": skipped, "error": str(error)}
    return {"steps": steps, "skipped": skipped, "error": None}


def run_rank(rank: int, world: int, init_file: str, train_videos: list, test_videos: list, out: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(rank)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=DEADLINE_S))
    shares = []
    for epoch in (0, 1):
        sampler = DistributedSampler(range(len(train_videos)), world, rank, shuffle=True, seed=0)
        sampler.set_epoch(epoch)  # Lightning does this at the start of every epoch
        shares.append(list(sampler))
    result = {"shares": shares, "test": score_views(test_videos, rank, world),
              "train": train_epoch(train_videos, rank, world, max_skip_fraction=100.0),
              "stopped": train_epoch(train_videos, rank, world, max_skip_fraction=0.5)}
    torch.save(result, Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


def spawn_with_deadline(world: int, *args: object) -> None:
    context = mp.start_processes(run_rank, args=(world, *args), nprocs=world, join=False, start_method="spawn")
    deadline = time.monotonic() + DEADLINE_S
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise AssertionError(f"the {world} ranks did not finish within {DEADLINE_S} s: a hang")


def test_two_ranks_share_the_data_and_agree_with_one_process(motion_root: Path, tmp_path: Path):
    unreadable = tmp_path / "zero_bytes.mp4"
    unreadable.write_bytes(b"")
    readable = [(str(motion_root / line.split()[0]), int(line.split()[1]))
                for line in (motion_root / "test.csv").read_text().splitlines()]  # 4 videos, 2 per class
    # rank r takes indices r, r + 2, ... unshuffled: every video rank 0 trains on is unreadable
    train_videos = [video for pair in zip([(str(unreadable), 0)] * 4, readable[:4]) for video in pair]
    test_videos = readable[:4] + [(str(unreadable), 0)]  # 5 videos × 3 clips: 15 views, one padded onto rank 1
    spawn_with_deadline(2, str(tmp_path / "init"), train_videos, test_videos, str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]

    for epoch in (0, 1):
        shares = [set(rank["shares"][epoch]) for rank in ranks]
        assert len(shares[0]) == len(shares[1]) == 4 and not shares[0] & shares[1]
    assert ranks[0]["shares"][0] != ranks[0]["shares"][1]  # reshuffled

    single = score_views(test_videos, rank=0, world=1)
    for rank in ranks:
        assert rank["test"]["videos"].tolist() == [0, 1, 2, 3]  # the unreadable video is left out, not scored
        torch.testing.assert_close(rank["test"]["probs"], single["probs"])
        assert all(rank["test"][name] == single[name] for name in ("top1", "top5", "mean_class_accuracy"))

    trained = [rank["train"] for rank in ranks]
    assert [run["steps"] for run in trained] == [2, 2] and [run["error"] for run in trained] == [None, None]
    assert trained[0]["skipped"] >= 4 and trained[1]["skipped"] == 0
    stopped = [rank["stopped"] for rank in ranks]  # rank 0 passes the limit; both ranks stop at the same step
    assert stopped[0]["steps"] == stopped[1]["steps"] < 2
    assert all("too many unreadable training videos" in run["error"] for run in stopped)
