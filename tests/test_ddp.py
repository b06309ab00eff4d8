"""Every attention scheme trains under 2-process CPU DDP (gloo) without unused-parameter errors.

DDP's default `find_unused_parameters=False` fails on the second step if any parameter got no gradient in
the first, so a few steps are a real check; afterwards both ranks must hold the same weights.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from lightning_video.models import ATTENTIONS, VideoTransformer

CASES = [(name, None) for name in ATTENTIONS] + [("xvit", {"temporal": "ta"}), ("xvit", {"temporal": "summary"})]


def train_every_scheme(rank: int, world_size: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    weights = {}
    for attention, options in CASES:
        torch.manual_seed(0)  # same initial weights on both ranks
        model = DistributedDataParallel(VideoTransformer(attention, num_classes=3, img_size=16, patch_size=4,
                                                         num_frames=4, embed_dim=16, depth=2, num_heads=2,
                                                         attention_options=options))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        generator = torch.Generator().manual_seed(rank)  # each rank its own data
        for _ in range(3):
            video, label = torch.randn(2, 3, 4, 16, 16, generator=generator), torch.randint(3, (2,), generator=generator)
            optimizer.zero_grad()
            F.cross_entropy(model(video), label).backward()
            optimizer.step()
        weights[f"{attention}{options or ''}"] = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.save(weights, Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_every_scheme_trains_under_two_process_ddp(tmp_path: Path):
    mp.spawn(train_every_scheme, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    rank0, rank1 = (torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1))
    assert len(rank0) == len(CASES)
    for case, weights in rank0.items():
        torch.testing.assert_close(weights, rank1[case], msg=case)
