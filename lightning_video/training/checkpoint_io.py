"""Lightning's checkpoint writes and reads through `models.checkpoint_file`: every checkpoint a run saves (best-k,
`last.ckpt` overwrites, SLURM's `hpc_ckpt_*.ckpt`, `Trainer.save_checkpoint`) is written whole or not at all and
carries a digest, and every `--ckpt_path` is checked against it when Lightning loads it.

Lightning 2.6's `TorchCheckpointIO` serialises to memory and writes through fsspec, whose local files are written in
the system temp folder and moved: across filesystems a truncating copy, so a kill or a full disk during it breaks the
checkpoint it replaces. Remote paths (s3://, gs://, ...) keep Lightning's writing, with the digest added and checked.
"""
from __future__ import annotations

from typing import Any, Callable

from fsspec.implementations.local import LocalFileSystem
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_fabric.utilities.cloud_io import get_filesystem
from lightning_fabric.utilities.types import _PATH

from lightning_video.models.checkpoint_file import load_checkpoint_file, save_atomically, verify, with_digest


class CrashSafeCheckpointIO(TorchCheckpointIO):
    """Atomic, synced checkpoint files with a content digest, checked on load (the CLI installs it on every run
    unless the trainer is given a CheckpointIO of its own)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None or not _is_local(path):
            super().save_checkpoint(with_digest(checkpoint), path, storage_options)
            return
        save_atomically(with_digest(checkpoint), path)

    def load_checkpoint(self, path: _PATH, map_location: Callable | None = lambda storage, loc: storage,
                        weights_only: bool | None = None) -> dict[str, Any]:
        if not _is_local(path):
            checkpoint = super().load_checkpoint(path, map_location, weights_only)
            verify(checkpoint, path)
            return checkpoint
        return load_checkpoint_file(path, map_location=map_location, weights_only=weights_only)


def _is_local(path: _PATH) -> bool:
    return isinstance(get_filesystem(path), LocalFileSystem)
