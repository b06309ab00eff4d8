"""PredictionWriter: each video's top-k labels with scores, from the test-time views, as CSV and JSON."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from lightning_video.data.decode import unreadable_reason
from lightning_video.training.metrics import JOINT, VideoPredictions, head_slices, joint_top_k
from lightning_video.training.runs import run_dir


class PredictionWriter(BasePredictionWriter):
    """Writes `predictions.csv` (columns video, rank, label, score) and `predictions.json` (per video its top-k
    labels and scores). A model with several heads (Epic-Kitchens) answers each: the csv gets a `head` column and the
    json per video, for each head (`verb`, `noun`) and for all at once (`action`: labels "verb noun", scored by the
    product of the heads' probabilities), its top-k labels and scores. A video's scores are its views' probabilities
    averaged, as in testing; videos that cannot
    be read are named in a warning, counted and left out. When none can be read, nothing is written and the command
    fails: an empty file would pass for a result. The videos and label names are the data module's
    (`VideoDataModule.videos("predict")` and `class_names`).

    Args:
        output_dir: folder for the two files; None: the run folder, next to its config.
        top_k: labels per video.
    """

    def __init__(self, output_dir: str | None = None, top_k: int = 5) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.top_k = top_k
        self.views = VideoPredictions()

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.views = VideoPredictions().to(pl_module.device)

    def write_on_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, prediction: torch.Tensor,
                           batch_indices: object, batch: dict, batch_idx: int, dataloader_idx: int) -> None:
        valid = batch["valid"]
        self.views.update(prediction[valid], batch["label"][valid], batch["video_index"][valid],
                          batch["clip_index"][valid], batch["aug_index"][valid])

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        per_video = self.views.compute()  # a collective: every rank takes part, and every rank gets all videos
        paths = [path for path, _ in trainer.datamodule.videos("predict")]  # in the order of `video_index`
        if not len(per_video.videos):  # on every rank, so that all of them stop
            raise RuntimeError(f"none of the {len(paths)} videos to predict could be read, so no predictions were "
                               f"written; the first, {paths[0]}: {unreadable_reason(paths[0])}")
        if not trainer.is_global_zero:
            return
        folder = Path(self.output_dir) if self.output_dir else run_dir(trainer)
        answers = top_answers(per_video.probs.cpu(), trainer.datamodule.class_names, trainer.datamodule.heads,
                               self.top_k)
        heads = list(answers)
        results = [{"video": paths[video], **(answers[""][row] if heads == [""] else
                                              {head: answers[head][row] for head in heads})}
                   for row, video in enumerate(per_video.videos.tolist())]
        unreadable = sorted(set(paths) - {result["video"] for result in results})
        if unreadable:
            rank_zero_warn(f"{len(unreadable)} videos could not be read and have no prediction: "
                           f"{', '.join(unreadable[:5])}{' …' if len(unreadable) > 5 else ''} (the first: "
                           f"{unreadable_reason(unreadable[0])})")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "predictions.json").write_text(json.dumps(results, indent=1))
        with open(folder / "predictions.csv", "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["video", "rank", "label", "score"] if heads == [""] else
                            ["video", "head", "rank", "label", "score"])
            for result in results:
                for head in heads:
                    answer = result if head == "" else result[head]
                    for rank, (label, score) in enumerate(zip(answer["labels"], answer["scores"]), start=1):
                        writer.writerow([result["video"], *([head] if head else []), rank, label, score])
        rank_zero_info(f"predictions for {len(results)} of {len(paths)} videos ({len(unreadable)} unreadable): "
                       f"{folder / 'predictions.csv'}, {folder / 'predictions.json'}")


def top_answers(probs: torch.Tensor, names: list[str], heads: dict[str, int], top_k: int) -> dict[str, list[dict]]:
    """Per head (`""` for a model with one), per video, the top-k `labels` and their `scores`; with several heads
    also `metrics.JOINT` (Epic-Kitchens' action), the most likely combinations named by their heads' labels."""
    def listed(labels: list[list[str]], scores: torch.Tensor) -> list[dict]:
        return [{"labels": row, "scores": [round(score, 6) for score in values]}
                for row, values in zip(labels, scores.tolist())]

    if not heads:
        top = probs.topk(min(top_k, probs.shape[1]), dim=1)
        return {"": listed([[names[label] for label in row] for row in top.indices.tolist()], top.values)}
    answers = {}
    slices = head_slices(heads)
    for head, columns in slices.items():
        top = probs[:, columns].topk(min(top_k, columns.stop - columns.start), dim=1)
        answers[head] = listed([[names[columns.start + label] for label in row] for row in top.indices.tolist()],
                               top.values)
    combinations, scores = joint_top_k(probs, heads, top_k)
    starts = [columns.start for columns in slices.values()]
    answers[JOINT] = listed([[" ".join(names[start + label] for start, label in zip(starts, combination))
                              for combination in row] for row in combinations.tolist()], scores)
    return answers
