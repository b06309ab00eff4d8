"""Command line: `python -m lightning_video fit|validate|test|predict --config FILE` (LightningCLI).

The data decides the model's input and output sizes: `data.num_frames`, `data.crop_size` and the dataset's
class count are linked into the backbone, so each is set once. `fit --test_after_fit true` tests the best
checkpoint when training ends and prints the video-level top-1 and where the run's files are.
"""
from __future__ import annotations

from typing import Any

from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.utilities import rank_zero_info

from lightning_video.data.datamodule import VideoDataModule
from lightning_video.module import VideoClassifier


class VideoCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_frames", "model.backbone.init_args.num_frames")
        parser.link_arguments("data.crop_size", "model.backbone.init_args.img_size")
        parser.link_arguments("data.num_classes", "model.backbone.init_args.num_classes", apply_on="instantiate")

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> LightningArgumentParser:
        # LightningCLI has no public per-subcommand hook; this option only means something for `fit`.
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "fit":
            parser.add_argument("--test_after_fit", type=bool, default=False,
                                help="After training, test the best checkpoint and print the video-level top-1.")
        return parser

    def after_fit(self) -> None:
        if not self.config.fit.test_after_fit:
            return
        best = self.trainer.checkpoint_callback.best_model_path if self.trainer.checkpoint_callback else ""
        results = self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)
        metrics = results[0] if results else {}
        rank_zero_info(f"\ntest video top-1: {metrics.get('test/video_top1', float('nan')):.3f} over "
                       f"{int(metrics.get('test/videos', 0))} videos ({best or 'final weights'})\n"
                       f"logs, config and checkpoints: {self.trainer.log_dir}")


def main(args: list[str] | None = None) -> None:
    VideoCLI(VideoClassifier, VideoDataModule, args=args, save_config_kwargs={"overwrite": True})
