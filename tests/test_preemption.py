"""SLURM's preemption signal only notes itself; the save, the requeue and the stop come at the next step boundary,
decided by every rank together, and a user's `SLURMEnvironment(auto_requeue=False)` turns it all off."""
from __future__ import annotations

import csv
import os
import signal
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.environments import SLURMEnvironment
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.strategies import SingleDeviceStrategy
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader, TensorDataset

from lightning_video.training.preemption import RequeueOnPreemption, defer_slurm_requeue

BATCHES = 8  # per epoch


class SignalledModel(pl.LightningModule):
    """A linear model that sends itself SIGUSR1 in the middle of the training step `signal_at` (None: never),
    between forward and optimizer step, and records the steps it trained, the epochs it validated and the
    checkpoints that existed right after the signal handler had run."""

    def __init__(self, folder: Path, signal_at: int | None = None) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.folder, self.signal_at = folder, signal_at
        self.trained: list[int] = []
        self.validated: list[int] = []
        self.saved_by_handler: list[Path] = []

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.trained.append(self.trainer.global_step)
        loss = self.layer(batch[0]).square().mean()
        if self.trainer.global_step == self.signal_at:
            os.kill(os.getpid(), signal.SIGUSR1)  # the handler runs here, before this function goes on
            self.saved_by_handler = list(self.folder.glob("hpc_ckpt_*.ckpt"))
        self.log("loss", loss)
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("val_loss", self.layer(batch[0]).square().mean())

    def on_validation_epoch_end(self) -> None:
        self.validated.append(self.current_epoch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class OtherRankSignalled(SingleDeviceStrategy):
    """One rank of a job where another rank got the signal before the `signalled_from`-th decision: this rank's own
    flag never is set, and the all-reduce's answer (any rank) is the other's."""

    def __init__(self, signalled_from: int) -> None:
        super().__init__(device=torch.device("cpu"))
        self.signalled_from = signalled_from
        self.decisions: list[tuple[bool, bool]] = []

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        self.decisions.append((decision, all))
        return decision or len(self.decisions) > self.signalled_from


@pytest.fixture
def slurm_job(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A SLURM job's variables, one task, and an `scontrol` on PATH that records its arguments in the returned
    file."""
    for name, value in dict(SLURM_JOB_ID="77", SLURM_JOB_NAME="train", SLURM_NTASKS="1", SLURM_NTASKS_PER_NODE="1",
                            SLURM_NNODES="1", SLURM_NODEID="0", SLURM_PROCID="0", SLURM_LOCALID="0",
                            SLURM_NODELIST="127.0.0.1").items():
        monkeypatch.setenv(name, value)
    bin_folder, calls = tmp_path / "bin", tmp_path / "scontrol_calls"
    bin_folder.mkdir()
    (bin_folder / "scontrol").write_text(f'#!/bin/bash\necho "$@" >> {calls}\n')
    (bin_folder / "scontrol").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_folder}{os.pathsep}{os.environ['PATH']}")
    return calls


def trainer(folder: Path, **options: object) -> pl.Trainer:
    options = {"enable_checkpointing": False, **options}
    return pl.Trainer(default_root_dir=folder, logger=CSVLogger(folder), max_epochs=2, log_every_n_steps=1,
                      accelerator="cpu", devices=1, enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0, **options)


def loader(batches: int = BATCHES) -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(batches, 4)), batch_size=1)


def steps_logged(folder: Path, version: int = 0) -> list[int]:
    with open(folder / f"lightning_logs/version_{version}/metrics.csv") as metrics:
        return [int(row["step"]) for row in csv.DictReader(metrics) if row["loss"]]


@pytest.mark.parametrize("signal_at", [2, BATCHES - 1], ids=["mid-epoch", "last batch"])
def test_the_signal_is_only_noted_the_run_saves_after_the_step_and_the_requeued_run_goes_on(
        signal_at: int, slurm_job: Path, tmp_path: Path):
    handler_before = signal.getsignal(signal.SIGUSR1)
    best = ModelCheckpoint(tmp_path / "best", monitor="val_loss")
    fit = trainer(tmp_path, callbacks=[best], enable_checkpointing=True)
    defer_slurm_requeue(fit)
    model = SignalledModel(tmp_path, signal_at)
    with pytest.raises(SIGTERMException):
        fit.fit(model, loader(), loader(2))

    assert model.saved_by_handler == []  # Lightning's handler would have saved here, inside the optimizer step
    saved = list(tmp_path.glob("hpc_ckpt_*.ckpt"))
    assert [path.name for path in saved] == ["hpc_ckpt_1.ckpt"]  # where a requeued job looks for it
    checkpoint = torch.load(saved[0], weights_only=True)
    # saved after the signalled step's optimizer step; at the end of the epoch, after its validation, whose score
    # the best-k tracking of the requeued run goes on from
    assert checkpoint["global_step"] == signal_at + 1
    validated = signal_at == BATCHES - 1
    assert (checkpoint["callbacks"][best.state_key]["best_model_score"] is not None) == validated
    assert slurm_job.read_text().split() == ["requeue", "77"]
    assert model.trained == list(range(signal_at + 1))  # stopped before the next step
    assert steps_logged(tmp_path) == list(range(signal_at + 1))  # the signalled step's metrics written
    assert signal.getsignal(signal.SIGUSR1) == handler_before

    # as SLURM starts the job again
    requeued = trainer(tmp_path, callbacks=[ModelCheckpoint(tmp_path / "best", monitor="val_loss")],
                       enable_checkpointing=True)
    resumed = SignalledModel(tmp_path)
    defer_slurm_requeue(requeued)
    requeued.fit(resumed, loader(), loader(2))  # from the hpc checkpoint by itself
    assert resumed.trained == list(range(signal_at + 1, 2 * BATCHES))  # every step once: none lost, none again
    assert steps_logged(tmp_path, version=1) == resumed.trained
    assert model.validated + resumed.validated == [0, 1]  # every epoch's validation once


def test_every_rank_saves_at_the_same_step_when_any_rank_was_signalled(slurm_job: Path, tmp_path: Path):
    strategy = OtherRankSignalled(signalled_from=2)
    fit = trainer(tmp_path, strategy=strategy, accumulate_grad_batches=2)
    fit.callbacks.append(RequeueOnPreemption())
    with pytest.raises(SIGTERMException):
        fit.fit(SignalledModel(tmp_path, signal_at=None), loader())

    # asked after each optimizer step (every second batch: accumulated gradients are in no checkpoint), with this
    # rank's own flag, answered for any rank
    assert strategy.decisions == [(False, False)] * 3
    saved = list(tmp_path.glob("hpc_ckpt_*.ckpt"))
    assert len(saved) == 1 and torch.load(saved[0], weights_only=True)["global_step"] == 3
    assert slurm_job.read_text().split() == ["requeue", "77"]


def test_slurm_auto_requeue_is_deferred_and_a_users_auto_requeue_false_is_kept(slurm_job: Path, tmp_path: Path):
    default = trainer(tmp_path)
    defer_slurm_requeue(default)
    environment = default._accelerator_connector.cluster_environment
    assert isinstance(environment, SLURMEnvironment) and not environment.auto_requeue  # Lightning's handler is off
    assert sum(isinstance(callback, RequeueOnPreemption) for callback in default.callbacks) == 1

    declined = trainer(tmp_path, plugins=[SLURMEnvironment(auto_requeue=False)])
    defer_slurm_requeue(declined)
    assert not any(isinstance(callback, RequeueOnPreemption) for callback in declined.callbacks)
    received = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))
    try:
        declined.fit(SignalledModel(tmp_path, signal_at=2), loader())  # trains on: the job ends when SLURM ends it
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert received == [signal.SIGUSR1]  # no handler of Lightning's or ours took it
    assert not slurm_job.exists() and not list(tmp_path.glob("hpc_ckpt_*.ckpt"))
