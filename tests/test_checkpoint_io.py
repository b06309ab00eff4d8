"""Checkpoint files: written whole or not at all (full disk, SIGKILL mid-save), a digest that catches a changed byte
at every read, plain words for files that are no checkpoint, and a checkpoint refused on data of other classes."""
from __future__ import annotations

import errno
import io
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from test_runs import TINY, tiny_fit

from lightning_video.cli import main
from lightning_video.models import VideoTransformer, load_pretrained
from lightning_video.models.checkpoint_file import DIGEST_KEY, CheckpointError, CheckpointSaveError, \
    content_digest, last_good_checkpoint, load_checkpoint_file
from lightning_video.training.checkpoint_io import CrashSafeCheckpointIO

REPO = Path(__file__).parents[1]
SIX_CLASSES = ["a", "b", "c", "d", "e", "f"]
# No logger, so the run's config goes to trainer.default_root_dir (given per test).
EVALUATE = [*TINY, "--trainer.logger", "false"]


@pytest.fixture(scope="module")
def six_class_run(motion_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkpoints folder of a tiny one-epoch run on the motion videos under six class names."""
    root = tmp_path_factory.mktemp("six") / "data"
    shutil.copytree(motion_root, root)
    (root / "classes.txt").write_text("\n".join(SIX_CLASSES) + "\n")
    runs = tmp_path_factory.mktemp("runs")
    main(tiny_fit(root, runs, "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1"))
    return runs / "lightning_logs/version_0/checkpoints"


def tiny_model() -> VideoTransformer:
    """The backbone of `six_class_run`."""
    return VideoTransformer(num_frames=4, img_size=16, patch_size=8, embed_dim=32, depth=1, num_heads=2, num_classes=6)


def damaged_copy(run: Path, folder: Path) -> Path:
    """The run's checkpoints copied to `folder`, with one byte of `last.ckpt`'s patch embedding weights flipped."""
    shutil.copytree(run, folder)
    damaged = folder / "last.ckpt"
    weights = torch.load(damaged, weights_only=True)["state_dict"]["backbone.patch_embed.proj.weight"]
    data = bytearray(damaged.read_bytes())
    offset = data.find(weights.numpy().tobytes()[:64])
    assert offset > 0
    data[offset + 10] ^= 0xFF
    damaged.write_bytes(bytes(data))
    return damaged


def test_a_run_writes_checkpoints_whole_with_their_digest(six_class_run: Path):
    names = sorted(path.name for path in six_class_run.iterdir())
    assert "last.ckpt" in names and len(names) == 2 and all(name.endswith(".ckpt") for name in names)  # no temp file
    for path in six_class_run.iterdir():
        checkpoint = torch.load(path, weights_only=True)
        assert checkpoint[DIGEST_KEY] == content_digest(checkpoint)


def test_a_flipped_byte_is_caught_by_test_and_load_pretrained(six_class_run: Path, tmp_path: Path):
    damaged = damaged_copy(six_class_run, tmp_path / "checkpoints")
    (best,) = [path for path in damaged.parent.glob("*.ckpt") if path != damaged]
    message = rf"{damaged} is damaged: its contents do not match .*; the last good checkpoint there: {best}"
    with pytest.raises(CheckpointError, match=message):
        main(["test", "--ckpt_path", str(damaged), *EVALUATE, "--trainer.default_root_dir", str(tmp_path)])
    model = tiny_model()
    with pytest.raises(CheckpointError, match=message):
        load_pretrained(model, damaged)
    assert load_pretrained(model, best).loaded  # the alternative named does load


def test_a_flipped_byte_is_caught_when_lightning_loads_it(six_class_run: Path, tmp_path: Path):
    """The path Lightning takes for every `--ckpt_path` (fit resumes included): the trainer's CheckpointIO."""
    damaged = damaged_copy(six_class_run, tmp_path / "checkpoints")
    with pytest.raises(CheckpointError, match="is damaged: its contents do not match"):
        CrashSafeCheckpointIO().load_checkpoint(damaged)


@pytest.mark.parametrize(("contents", "message"), [
    (b"", r"is empty \(0 bytes\), not a checkpoint"),
    (bytes(range(7, 256)) * 40, r"is not a checkpoint: it is data of another kind"),
    (b"epoch: 3\nbest: 0.9\n", r"is not a checkpoint: it is a text file"),
], ids=["empty", "random-bytes", "text"])
def test_a_file_that_is_no_checkpoint_says_so(contents: bytes, message: str, six_class_run: Path, tmp_path: Path):
    shutil.copytree(six_class_run, tmp_path / "checkpoints")
    path = tmp_path / "checkpoints/last.ckpt"
    path.write_bytes(contents)
    with pytest.raises(CheckpointError, match=rf"{path} {message}.*; the last good checkpoint there: "):
        main(["test", "--ckpt_path", str(path), *EVALUATE, "--trainer.default_root_dir", str(tmp_path)])
    with pytest.raises(CheckpointError, match=message):
        load_pretrained(tiny_model(), path)


def test_a_checkpoint_without_digest_still_loads(tmp_path: Path):
    path = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 1}, path)
    assert load_checkpoint_file(path)["epoch"] == 1
    assert CrashSafeCheckpointIO().load_checkpoint(path)["epoch"] == 1


class DiskFillingUp:
    """A file whose disk is full after `room` bytes: the write that would pass them fails as on a full disk."""

    def __init__(self, file: io.BufferedWriter, room: int) -> None:
        self.file, self.room = file, room

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            self.file.write(bytes(data)[:self.room])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()


@pytest.mark.parametrize("name", ["last.ckpt", "epoch=2-step=24.ckpt"], ids=["overwrite", "new"])
def test_a_full_disk_during_a_save_keeps_the_last_checkpoint(name: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    io_plugin, last = CrashSafeCheckpointIO(), tmp_path / "last.ckpt"
    io_plugin.save_checkpoint({"step": 8, "weights": torch.arange(1000.0)}, last)
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda checkpoint, file: real_save(checkpoint, DiskFillingUp(file, 2000)))
    with pytest.raises(CheckpointSaveError, match=rf"could not save checkpoint {tmp_path / name}: the disk is full "
                                                  rf".*the last good checkpoint is {last}") as error:
        io_plugin.save_checkpoint({"step": 24, "weights": torch.zeros(1000)}, tmp_path / name)
    assert error.value.errno == errno.ENOSPC
    assert [path.name for path in tmp_path.iterdir()] == ["last.ckpt"]  # nothing partial, no temporary file
    assert io_plugin.load_checkpoint(last)["step"] == 8


# What CrashSafeCheckpointIO.save_checkpoint does, without importing Lightning: the child starts faster.
KILLED_SAVE = """
import io, os, sys, time
from pathlib import Path
import torch
from lightning_video.models.checkpoint_file import save_atomically, with_digest

point, last = sys.argv[1], Path(sys.argv[2])
save_atomically(with_digest({"step": 8, "weights": torch.arange(2_000_000.0)}), last)
real_save = torch.save

def wait_to_be_killed():
    print("saving", flush=True)
    time.sleep(60)

def half_then_wait(checkpoint, file):
    buffer = io.BytesIO()
    real_save(checkpoint, buffer)
    file.write(buffer.getvalue()[:buffer.tell() // 2])
    file.flush()
    wait_to_be_killed()

if point == "mid-write":
    torch.save = half_then_wait
else:  # written and synced, not renamed yet
    os.replace = lambda *args: wait_to_be_killed()
save_atomically(with_digest({"step": 16, "weights": torch.zeros(2_000_000)}), last)
"""


@pytest.mark.parametrize(("point", "name"), [("mid-write", "last.ckpt"), ("before-rename", "hpc_ckpt_1.ckpt")])
def test_a_kill_during_a_save_keeps_the_last_checkpoint(point: str, name: str, tmp_path: Path):
    last = tmp_path / "checkpoints" / name
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, point, str(last)], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout.readline() == b"saving\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    (leftover,) = [path for path in last.parent.iterdir() if path != last]
    assert load_checkpoint_file(last)["step"] == 8
    assert last_good_checkpoint(last.parent) == last  # the leftover is no checkpoint candidate
    hpc_resume = pl.Trainer(default_root_dir=last.parent, logger=False)._checkpoint_connector._hpc_resume_path
    assert hpc_resume == (str(last) if name.startswith("hpc_ckpt_") else None)  # as a requeued SLURM job finds it
    assert leftover.name.startswith(f".saving.{child.pid}.") and leftover.stat().st_size > 0
    CrashSafeCheckpointIO().save_checkpoint({"step": 24}, last.parent / "epoch=2-step=24.ckpt")
    assert not leftover.exists()  # the next save cleans it up


@pytest.mark.parametrize("command", ["test", "predict"])
def test_a_checkpoint_of_other_classes_is_refused(command: str, six_class_run: Path, motion_root: Path,
                                                  tmp_path: Path):
    predict = ["--data.path", str(motion_root / "test"), "--predictions.output_dir", str(tmp_path)]
    last = six_class_run / "last.ckpt"
    with pytest.raises(ValueError, match=rf"checkpoint {last} has 6 classes \(a, b, c, d, e, f\) but data.root "
                                         rf"{motion_root} has 2 \(left, right\)"):
        main([command, "--ckpt_path", str(last), "--data.root", str(motion_root), *EVALUATE,
              "--trainer.default_root_dir", str(tmp_path), *(predict if command == "predict" else [])])
