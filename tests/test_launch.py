"""The shipped launchers, run as users run them, on a CPU: `experiments/torchrun.sh` on two nodes of one process
(loopback, gloo) trains exactly as on one node of two processes, and `experiments/slurm/train.sbatch`, preempted by
SLURM's SIGUSR1, saves a checkpoint, requeues its job, and when SLURM starts it again continues from that checkpoint.

Every launch runs under a deadline, past which it is killed with every process below it: a rank left waiting fails
the test instead of hanging the suite. `srun` and `scontrol` are stand-ins on PATH that do what SLURM's would on one
node; everything else (the scripts, torchrun, Lightning's SLURM environment and signal handling) is real.
"""
from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

REPO = Path(__file__).parents[1]
CONFIG = REPO / "experiments/configs/synthetic_motion.yaml"
DEADLINE_S = 120
# The README's main job, shrunk: 8 training videos, a one-block backbone on 4 frames of 16 px, on the CPU.
TINY = ["--data.synthetic", "null", "--data.cache_frames", "false", "--data.batch_size", "2",
        "--data.num_frames", "4", "--data.sampling_rate", "2", "--data.crop_size", "16",
        "--data.train_min_short_side", "16", "--data.train_max_short_side", "20", "--data.test_crops", "1",
        "--model.backbone.init_args.patch_size", "8", "--model.backbone.init_args.embed_dim", "16",
        "--model.backbone.init_args.depth", "1", "--model.backbone.init_args.num_heads", "2",
        "--trainer.enable_progress_bar", "false", "--trainer.log_every_n_steps", "1", "--trainer.accelerator", "cpu"]
# Values that measure the machine, not the training.
TIMING_COLUMNS = ("perf/clips_per_s", "perf/peak_memory_GiB")


def launcher_env(**variables: str) -> dict[str, str]:
    """This repository's code, one thread per process, and no launcher variables of the shell that runs the tests."""
    inherited = {name: value for name, value in os.environ.items()
                 if not name.startswith(("SLURM_", "TORCHELASTIC_", "PL_")) and name not in (
                     "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK",
                     "NPROC_PER_NODE", "GPUS_PER_NODE")}
    return {**inherited, "PYTHONPATH": os.pathsep.join((str(REPO), str(REPO / "tests"))), "OMP_NUM_THREADS": "1",
            **variables}


def start(command: list[str | Path], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen([str(part) for part in command], env=env, cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT)


def finish(processes: list[subprocess.Popen], logs: list[Path], deadline: float) -> list[int]:
    """The exit codes, or, once the deadline passes, every launch killed with its processes and the logs shown."""
    try:
        return [process.wait(timeout=max(deadline - time.monotonic(), 0.1)) for process in processes]
    except subprocess.TimeoutExpired:
        for process in processes:
            kill_tree(process)
        raise AssertionError(f"a launch did not finish within {DEADLINE_S} s: a hang\n" + tails(logs))


def kill_tree(process: subprocess.Popen) -> None:
    """Kills the launch and every process below it: torchrun starts its workers in sessions of their own, out of
    reach of a signal to the launch's process group."""
    signal_tree(process.pid, signal.SIGKILL)
    process.wait()


def signal_tree(pid: int, signum: signal.Signals) -> None:
    """Sends `signum` to `pid` and every process below it, as slurmstepd signals every process of a job step."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):  # gone meanwhile
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, unvisited = [], [pid]
    while unvisited:
        tree.append(unvisited.pop())
        unvisited += children.get(tree[-1], [])
    for member in tree:
        try:
            os.kill(member, signum)
        except ProcessLookupError:
            pass


def tails(logs: list[Path]) -> str:
    return "\n".join(f"--- {log}:\n{log.read_text()[-3000:]}" for log in logs if log.exists())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def metrics(run: Path) -> list[dict[str, str]]:
    return [{name: value for name, value in row.items() if name not in TIMING_COLUMNS}
            for row in csv.DictReader((run / "metrics.csv").read_text().splitlines())]


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def test_torchrun_on_two_nodes_of_one_process_trains_as_one_node_of_two(motion_root: Path, tmp_path: Path):
    script = REPO / "experiments/torchrun.sh"
    runs, processes, logs = {}, [], []
    for name, nodes in (("two_nodes", ("0", "1")), ("one_node", ("0",))):  # both at once: half the wait
        runs[name] = tmp_path / name / "runs"
        command = [script, CONFIG, "--data.root", motion_root, *TINY, "--data.num_workers", "0",
                   "--trainer.max_epochs", "2", "--checkpoint.save_top_k", "-1",
                   "--trainer.logger.init_args.save_dir", runs[name]]
        shape = dict(NNODES="2", NPROC_PER_NODE="1") if len(nodes) == 2 else dict(NPROC_PER_NODE="2")
        port = str(free_port())
        for rank in nodes:
            logs.append(tmp_path / name / f"node{rank}.log")
            processes.append(start(command, launcher_env(**shape, NODE_RANK=rank, MASTER_ADDR="127.0.0.1",
                                                         MASTER_PORT=port), tmp_path / name / f"node{rank}", logs[-1]))
    assert finish(processes, logs, time.monotonic() + DEADLINE_S) == [0, 0, 0], tails(logs)

    two_nodes, one_node = (runs[name] / "synthetic_motion/version_0" for name in ("two_nodes", "one_node"))
    logged = metrics(two_nodes)
    assert logged == metrics(one_node)
    # 8 videos over 2 ranks in batches of 2: 2 steps per epoch, each logged
    assert [row["step"] for row in logged if row["train/loss"]] == ["0", "1", "2", "3"]
    checkpoints = sorted(path.name for path in (two_nodes / "checkpoints").glob("*.ckpt"))
    assert checkpoints == sorted(path.name for path in (one_node / "checkpoints").glob("*.ckpt"))
    assert {"epoch=0-step=2.ckpt", "epoch=1-step=4.ckpt"} <= set(checkpoints)
    for name in checkpoints:
        expected = weights(one_node / "checkpoints" / name)
        for key, weight in weights(two_nodes / "checkpoints" / name).items():
            torch.testing.assert_close(weight, expected[key], rtol=0, atol=0, msg=f"{name}: {key}")
    first, final = (weights(two_nodes / "checkpoints" / name) for name in ("epoch=0-step=2.ckpt",
                                                                            "epoch=1-step=4.ckpt"))
    assert any(not torch.equal(first[key], final[key]) for key in final)  # the second epoch trained


def test_torchrun_starts_one_process_per_node_without_gpus(tmp_path: Path):
    """On a machine without `nvidia-smi` the script must not fail looking for GPUs: one process, `devices 1`."""
    if any(Path(folder, "nvidia-smi").exists() for folder in ("/bin", "/usr/bin")):
        pytest.skip("nvidia-smi is installed system-wide: this machine has GPUs to count")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    recorded = tmp_path / "torchrun_args"
    (stubs / "torchrun").write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" > {recorded}\n')
    (stubs / "torchrun").chmod(0o755)
    subprocess.run(["bash", REPO / "experiments/torchrun.sh", CONFIG, "--data.root", "data"], check=True, timeout=30,
                   env={**launcher_env(), "PATH": f"{stubs}:/usr/bin:/bin"})
    args = recorded.read_text().splitlines()
    assert args[args.index("--nproc_per_node") + 1] == "1" and args[args.index("--trainer.devices") + 1] == "1"
    assert args[-2:] == ["--data.root", "data"]  # the user's arguments come last, so they override the script's


class HoldForPreemption(pl.Callback):
    """Holds training once, after `step` optimizer steps, until SLURM's SIGUSR1 arrives (a minute at most), so that
    the preemption lands mid-epoch at a known step however fast the machine is. Records the step each run starts
    from in `folder/starts`."""

    def __init__(self, step: int, folder: str) -> None:
        self.step, self.folder = step, Path(folder)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        with open(self.folder / "starts", "a") as starts:
            starts.write(f"{trainer.global_step}\n")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: object, batch: object,
                           batch_idx: int) -> None:
        held = self.folder / "held"
        if trainer.global_step != self.step or held.exists():
            return
        signalled = []
        trainers_handler = signal.getsignal(signal.SIGUSR1)

        def note_and_pass_on(signum: int, frame: object) -> None:
            signalled.append(signum)
            trainers_handler(signum, frame)

        signal.signal(signal.SIGUSR1, note_and_pass_on)
        held.touch()
        deadline = time.monotonic() + 60
        while not signalled and time.monotonic() < deadline:
            time.sleep(0.05)  # the signal handlers run in this thread, between these sleeps
        signal.signal(signal.SIGUSR1, trainers_handler)


def wait_for(path: Path, process: subprocess.Popen, log: Path, deadline: float) -> None:
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            kill_tree(process)
            raise AssertionError(f"{path.name} did not appear (exit status {process.poll()})\n" + tails([log]))
        time.sleep(0.05)


def test_slurm_preemption_saves_requeues_and_the_requeued_job_continues(motion_root: Path, tmp_path: Path):
    stubs, job = tmp_path / "bin", tmp_path / "submit"
    stubs.mkdir()
    # srun with one task on this node becomes that task and records its pid: SLURM signals it and every process
    # below it (with SLURM_CPUS_PER_TASK 2 the sbatch gives it a loader worker, which once saved over its checkpoint)
    (stubs / "srun").write_text(f'#!/bin/bash\necho $$ > {tmp_path}/task_pid\nexec "$@"\n')
    (stubs / "scontrol").write_text(f'#!/bin/bash\necho "$@" >> {tmp_path}/scontrol_calls\n')
    for stub in ("srun", "scontrol"):
        (stubs / stub).chmod(0o755)
    env = launcher_env(PATH=f"{stubs}:{os.environ['PATH']}", SLURM_JOB_ID="4242", SLURM_JOB_NAME="lightning-video",
                       SLURM_NNODES="1", SLURM_NTASKS="1", SLURM_NTASKS_PER_NODE="1", SLURM_CPUS_PER_TASK="2",
                       SLURM_NODEID="0", SLURM_PROCID="0", SLURM_LOCALID="0", SLURM_NODELIST="127.0.0.1",
                       MASTER_PORT=str(free_port()))
    hold = f'{{"class_path": "test_launch.HoldForPreemption", "init_args": {{"step": 6, "folder": "{tmp_path}"}}}}'
    # 8 videos in batches of 2: 4 steps per epoch; the preemption comes in the middle of the second epoch
    command = ["bash", REPO / "experiments/slurm/train.sbatch", CONFIG, "--data.root", motion_root, *TINY,
               "--trainer.max_epochs", "3", "--checkpoint.save_top_k", "-1", f"--trainer.callbacks+={hold}"]
    log = job / "slurm-4242.out"  # --open-mode=append: the requeued run writes on
    # the same job never preempted, meanwhile: an srun that records no pid, a port of its own
    plain_stubs, plain_job = tmp_path / "plain_bin", tmp_path / "uninterrupted"
    plain_stubs.mkdir()
    (plain_stubs / "srun").write_text('#!/bin/bash\nexec "$@"\n')
    (plain_stubs / "srun").chmod(0o755)
    plain_log = plain_job / "slurm-4243.out"
    uninterrupted = start(command[:-1], {**env, "PATH": f"{plain_stubs}:{env['PATH']}", "SLURM_JOB_ID": "4243",
                                         "MASTER_PORT": str(free_port())}, plain_job, plain_log)

    preempted = start(command, env, job, log)
    deadline = time.monotonic() + DEADLINE_S
    wait_for(tmp_path / "held", preempted, log, deadline)
    task = int((tmp_path / "task_pid").read_text())
    signal_tree(task, signal.SIGUSR1)  # --signal=SIGUSR1@300: the time limit or a preemption is near
    wait_for(tmp_path / "scontrol_calls", preempted, log, deadline)
    signal_tree(task, signal.SIGTERM)  # the requeue ends the running job
    finish([preempted], [log], deadline)
    assert (tmp_path / "scontrol_calls").read_text().split() == ["requeue", "4242"]
    saved = sorted((job / "runs/slurm-4242").glob("hpc_ckpt_*.ckpt"))  # where the sbatch header says
    assert len(saved) == 1, f"no single hpc checkpoint in runs/slurm-4242: {saved}\n" + tails([log])
    assert torch.load(saved[0], map_location="cpu", weights_only=True)["global_step"] == 6

    requeued = start(command, {**env, "SLURM_RESTART_COUNT": "1"}, job, log)  # the same job, started again
    assert finish([requeued], [log], time.monotonic() + DEADLINE_S) == [0], tails([log])
    assert (tmp_path / "starts").read_text().split() == ["0", "6"]
    runs = job / "runs/synthetic_motion"
    assert "epoch=2-step=12.ckpt" in {path.name for path in runs.glob("*/checkpoints/*.ckpt")}  # 3 epochs of 4 steps
    trained_steps = sorted({int(row["step"]) for run in runs.iterdir() for row in metrics(run) if row["train/loss"]})
    assert trained_steps == list(range(12))  # every step trained once: none lost, none from 0 again

    assert finish([uninterrupted], [plain_log], time.monotonic() + DEADLINE_S) == [0], tails([plain_log])
    final, expected = (weights(next(folder.glob("runs/synthetic_motion/*/checkpoints/epoch=2-step=12.ckpt")))
                       for folder in (job, plain_job))
    for key, weight in final.items():  # the resume is exact: preempted and requeued, the run ends as if never
        torch.testing.assert_close(weight, expected[key], rtol=0, atol=0, msg=key)
