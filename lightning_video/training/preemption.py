"""SLURM preemption handled between training steps, not inside the signal handler.

SLURM announces the end of a job with a signal (`--signal=SIGUSR1@<seconds>`: the time limit or a preemption is
near). Lightning's own handler saves the `hpc_ckpt_<n>.ckpt` a requeued job resumes from inside the signal handler,
wherever the main thread is: within an optimizer step, or after one but before its metrics are logged (the resumed
run then never logs that step), and under DDP the save's barrier can meet another rank's gradient all-reduce and
hang (Lightning-AI/pytorch-lightning#21406). Here the handler only notes the signal; the save, the requeue and the
stop come at the next points where every rank is between the same two steps.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from types import FrameType
from typing import Any

import pytorch_lightning as pl
from lightning_fabric.plugins.environments import SLURMEnvironment
from pytorch_lightning.callbacks import Checkpoint
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from pytorch_lightning.utilities.exceptions import SIGTERMException


def defer_slurm_requeue(trainer: pl.Trainer) -> None:
    """Replace Lightning's SLURM auto-requeue (save inside the signal handler) by `RequeueOnPreemption`, when the
    trainer runs under SLURM with auto-requeue on. `SLURMEnvironment(auto_requeue=False)` in `trainer.plugins` keeps
    both off."""
    environment = trainer._accelerator_connector.cluster_environment  # where Lightning's signal connector looks
    if isinstance(environment, SLURMEnvironment) and environment.auto_requeue:
        environment.auto_requeue = False
        trainer.callbacks.append(RequeueOnPreemption(environment.requeue_signal or signal.SIGUSR1))


class RequeueOnPreemption(Checkpoint):
    """On `requeue_signal`, save `hpc_ckpt_<n>.ckpt`, where a requeued job resumes from by itself, after the current
    training step, then requeue the job and stop as the next batch starts.

    The save comes where Lightning's own checkpoints are taken and resume from, and where every rank is between the
    same two steps, so the ranks agree there on whether any of them was signalled (one all-reduce) and save together:
    after an optimizer step (none between accumulated batches: their gradients are in no checkpoint), or at the end
    of an epoch, after its validation (not after the step before a validation: the resumed run would skip it). The
    stop waits for the step's metrics to be logged and written. The run stops right after the requeue (Lightning's
    `SIGTERMException`: exit status 0) rather than training on until SLURM's SIGTERM as Lightning does: the
    requeued job would throw away every step trained meanwhile, and ranks stopping at one agreed step leave no rank
    waiting in a collective. A validation pass in progress ends first, so SLURM's signal must come that much before
    the end (`experiments/slurm/train.sbatch`). A `Checkpoint`, so that Lightning calls it after the other checkpoint
    callbacks at an epoch's end: the checkpoint holds their state after the epoch's validation (the best so far).

    Args:
        requeue_signal: the signal SLURM sends (`--signal`).
    """

    def __init__(self, requeue_signal: signal.Signals = signal.SIGUSR1) -> None:
        self.requeue_signal = requeue_signal
        self.signalled = False
        self.saved: str | None = None  # the checkpoint saved, once saved: the job is to be requeued and stopped
        self._previous_handler: Any = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.signalled, self.saved = False, None

    # Listening starts after Lightning has taken its note of the handlers to give back at the end of a fit: given
    # back after ours, ours would outlive the fit.
    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._listen()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._listen()  # without a sanity check

    def _listen(self) -> None:
        if self._previous_handler is None and threading.current_thread() is threading.main_thread():  # Python's rule
            self._previous_handler = signal.signal(self.requeue_signal, self._note_signal) or signal.SIG_DFL

    def _note_signal(self, signum: int, frame: FrameType | None) -> None:
        """Only a note: the main thread may be anywhere, inside an optimizer step or a collective."""
        self.signalled = True

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        epoch_loop = trainer.fit_loop.epoch_loop
        validation_or_epoch_end_next = (epoch_loop.batch_progress.is_last_batch or
                                        epoch_loop._should_check_val_fx(trainer.fit_loop._data_fetcher))
        if not epoch_loop._should_accumulate() and not validation_or_epoch_end_next:
            self._save_if_signalled(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save_if_signalled(trainer)

    def _save_if_signalled(self, trainer: pl.Trainer) -> None:
        if self.saved is not None or not trainer.strategy.reduce_boolean_decision(self.signalled, all=False):
            return  # any rank signalled: all save
        # rank 0's name for every rank: the ranks may see the folder at different moments
        path = trainer.strategy.broadcast(trainer._checkpoint_connector.hpc_save_path(trainer.default_root_dir))
        rank_zero_info(f"{signal.Signals(self.requeue_signal).name}: the job ends soon; saving {path} at step "
                       f"{trainer.global_step}, then requeueing the job")
        trainer.save_checkpoint(path)
        self.saved = path

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self.saved is None:
            return
        for logger in trainer.loggers:
            logger.save()  # the steps logged so far reach the disk before SLURM ends the job
        if trainer.is_global_zero:
            requeue(self.saved)
        raise SIGTERMException

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._restore_handler()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore_handler()  # Lightning calls no `teardown` hook when a fit ends with an exception

    def _restore_handler(self) -> None:
        if self._previous_handler is not None:
            signal.signal(self.requeue_signal, self._previous_handler)
            self._previous_handler = None


def requeue(checkpoint: str) -> None:
    """`scontrol requeue` this job, as Lightning's auto-requeue does: SLURM starts it again with the same job id, and
    Lightning resumes it from the newest `hpc_ckpt_<n>.ckpt` of the same `default_root_dir`."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array_job else os.environ["SLURM_JOB_ID"]
    if not re.fullmatch(r"[0-9_]+", job):
        raise ValueError(f"SLURM job id {job!r} (SLURM_JOB_ID / SLURM_ARRAY_JOB_ID) is not a number: cannot requeue")
    try:
        result = subprocess.call(["scontrol", "requeue", job])
    except FileNotFoundError:  # as Lightning: `scontrol` may be found only by a shell
        result = subprocess.call(f"scontrol requeue {job}", shell=True)
    if result == 0:
        rank_zero_info(f"Requeued SLURM job {job}")
    else:
        rank_zero_warn(f"Requeueing SLURM job {job} failed with exit status {result}: resubmit it and resume with "
                    f"`fit --ckpt_path {checkpoint}`")
