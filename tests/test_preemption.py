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
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.strategies import SingleDeviceStrategy
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader, TensorDataset

from lightning_video.training.preemption import RequeueOnPreemption, defer_slurm_requeue

SIGNALLED_IN_STEP = 2  # the batch whose training step receives the signal


class SignalledModel(pl.LightningModule):
    """A linear model that sends itself SIGUSR1 in the middle of the training step `signal_at` (None: never),
    between forward and optimizer step, and records the batches it trained and the checkpoints that existed right
    after the signal handler had run."""

    def __init__(self, folder: Path, signal_at: int | None = SIGNALLED_IN_STEP) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.folder, self.signal_at = folder, signal_at
        self.trained: list[int] = []
        self.saved_by_handler: list[Path] = []

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.trained.append(self.trainer.global_step)
        loss = self.layer(batch[0]).square().mean()
        if self.trainer.global_step == self.signal_at:
            os.kill(os.getpid(), signal.SIGUSR1)  # the handler runs here, before this function goes on
            self.saved_by_handler = list(self.folder.glob("hpc_ckpt_*.ckpt"))
        self.log("loss", loss)
        return loss

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
    return pl.Trainer(default_root_dir=folder, logger=CSVLogger(folder), max_epochs=1, log_every_n_steps=1,
                      accelerator="cpu", devices=1, enable_progress_bar=False, enable_model_summary=False,
                      enable_checkpointing=False, **options)


def loader(batches: int = 8) -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(batches, 4)), batch_size=1)


def steps_logged(folder: Path) -> list[int]:
    with open(next(folder.glob("lightning_logs/version_*/metrics.csv"))) as metrics:
        return [int(row["step"]) for row in csv.DictReader(metrics) if row["loss"]]


def test_the_signal_is_only_noted_and_the_run_saves_requeues_and_stops_after_the_step(slurm_job: Path,
                                                                                       tmp_path: Path):
    handler_before = signal.getsignal(signal.SIGUSR1)
    fit = trainer(tmp_path)
    defer_slurm_requeue(fit)
    model = SignalledModel(tmp_path)
    with pytest.raises(SIGTERMException):
        fit.fit(model, loader())

    assert model.saved_by_handler == []  # Lightning's handler would have saved here, inside the optimizer step
    saved = list(tmp_path.glob("hpc_ckpt_*.ckpt"))
    assert [path.name for path in saved] == ["hpc_ckpt_1.ckpt"]  # where a requeued job looks for it
    # saved after the signalled step's optimizer step, which the resumed run does not train again
    assert torch.load(saved[0], weights_only=True)["global_step"] == SIGNALLED_IN_STEP + 1
    assert slurm_job.read_text().split() == ["requeue", "77"]
    assert model.trained == [0, 1, 2]  # stopped before the next step
    assert steps_logged(tmp_path) == [0, 1, 2]  # the signalled step's metrics written before the requeue
    assert signal.getsignal(signal.SIGUSR1) == handler_before


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
        declined.fit(SignalledModel(tmp_path), loader())  # trains on: the job ends when SLURM ends it
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert received == [signal.SIGUSR1]  # no handler of Lightning's or ours took it
    assert not slurm_job.exists() and not list(tmp_path.glob("hpc_ckpt_*.ckpt"))
