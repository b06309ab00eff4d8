"""The metrics of models with several heads (each head's accuracy, the action: all heads right at once, its top-k
without forming every combination) and the top-k left out where k reaches the class count."""
from __future__ import annotations

import itertools

import pytest
import torch

from lightning_video.training.metrics import classification_metrics, joint_top_k

HEADS = {"verb": 4, "noun": 6}


def random_probs(samples: int, heads: dict[str, int], seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.cat([torch.rand(samples, size, generator=generator).softmax(1) for size in heads.values()], 1)


@pytest.mark.parametrize("heads", [HEADS, {"a": 3, "b": 2, "c": 5}])
def test_joint_top_k_is_the_top_k_of_every_combination(heads: dict[str, int]):
    probs = random_probs(16, heads)
    columns = probs.split(list(heads.values()), dim=1)
    every = list(itertools.product(*(range(size) for size in heads.values())))
    scores = torch.stack([torch.stack([columns[h][:, c] for h, c in enumerate(combination)]).prod(0)
                          for combination in every], 1)  # [B, all combinations]
    best = scores.topk(5, dim=1)
    combinations, top_scores = joint_top_k(probs, heads, 5)
    torch.testing.assert_close(top_scores, best.values)
    assert combinations.tolist() == [[list(every[index]) for index in row] for row in best.indices.tolist()]


def test_action_is_every_head_right_at_once():
    def ranked(first: list[int], second: list[int], size: int) -> torch.Tensor:
        probs = torch.full((len(first), size), 0.1 / size)
        probs[range(len(first)), second], probs[range(len(first)), first] = 0.3, 0.6
        return probs / probs.sum(1, keepdim=True)

    probs = torch.cat([ranked([0, 1, 2, 3], [1, 0, 0, 0], 4), ranked([0, 1, 5, 5], [1, 2, 0, 0], 6)], 1)
    targets = torch.tensor([[0, 0], [1, 2], [0, 5], [3, 5]])  # both right, noun second, verb second, both right
    result = classification_metrics(10, False, HEADS)(probs, targets)
    assert (result["verb_top1"], result["noun_top1"], result["action_top1"]) == (0.75, 0.75, 0.5)
    assert result["action_top5"] == 1.0 and result["noun_top5"] == 1.0  # the wrong ones are second
    assert set(result) == {f"{head}_{name}" for head in HEADS for name in ("top1", "top5", "mean_class_accuracy")
                           if name != "top5" or HEADS[head] > 5} | {"action_top1", "action_top5"}


@pytest.mark.parametrize(("classes", "logged"), [(2, False), (5, False), (6, True)])
def test_top5_is_left_out_where_it_is_1_by_construction(classes: int, logged: bool):
    assert ("top5" in classification_metrics(classes, multi_label=False)) == logged
    metrics = classification_metrics(classes + 3, False, {"small": classes, "large": 3})
    assert ("small_top5" in metrics, "large_top5" in metrics, "action_top5" in metrics) == (logged, False, True)
