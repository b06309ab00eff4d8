"""Checkpoint files that are whole or absent, and that say when they are damaged.

A save writes a temporary file in the checkpoint's own folder, syncs it to disk and renames it over the checkpoint's
name, so a kill or a full disk at any moment leaves the previous file under that name, never part of a new one (a
rename within a folder is atomic; a move from another filesystem, as from the system temp folder, is a copy).
Every checkpoint carries a sha256 digest of its contents (`DIGEST_KEY`), checked on every read: of every tensor's
dtype, shape and bytes and of every other value, walked in order, so a byte changed in the weights, the optimizer
state or the training state is caught. It is computed from the objects, not from the file's bytes, so that it can be
checked on what was loaded. Files without one (older or foreign checkpoints) load unchecked. A read that fails says
in plain words what the file is and names the newest checkpoint beside it that reads and verifies.
"""
from __future__ import annotations

import errno
import hashlib
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

DIGEST_KEY = "lightning_video_digest"
DIGEST_ALGORITHM = "sha256"
CHECKPOINT_SUFFIX = ".ckpt"  # Lightning's; the folder of a damaged one is searched for an alternative
# A killed save leaves `.saving.PID.TOKEN.tmp` beside the checkpoint: hidden, matching no `*.ckpt` and holding no
# checkpoint name (Lightning takes any file name with `hpc_ckpt_` in it for a SLURM checkpoint to resume from).
TEMPORARY_FILE = re.compile(r"\.saving\.(\d+)\.[0-9a-f]+\.tmp")
ZIP_START = b"PK\x03\x04"  # torch.save's format since torch 1.6
PICKLE_START = b"\x80"  # the legacy format: a bare pickle
WEIGHTS_ONLY_REFUSAL = "Weights only load failed"
SAVE_CAUSES = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded"}


class CheckpointError(ValueError):
    """A file that is no whole checkpoint: empty, not a checkpoint, unreadable, or not matching its digest."""


class CheckpointSaveError(OSError):
    """A checkpoint that could not be written; nothing was left under its name."""


def content_digest(checkpoint: Mapping[str, Any]) -> str:
    """`sha256:HEX` of everything in `checkpoint` but a digest already stored in it."""
    hasher = hashlib.new(DIGEST_ALGORITHM)
    _hash({key: value for key, value in checkpoint.items() if key != DIGEST_KEY}, hasher)
    return f"{DIGEST_ALGORITHM}:{hasher.hexdigest()}"


def with_digest(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow copy of `checkpoint` with its content digest stored under `DIGEST_KEY`."""
    return {**checkpoint, DIGEST_KEY: content_digest(checkpoint)}


def verify(checkpoint: Mapping[str, Any], source: str | Path) -> None:
    """Raise CheckpointError when `checkpoint` (read from `source`) does not match the digest stored in it."""
    stored = checkpoint.get(DIGEST_KEY)
    if stored is not None and stored != content_digest(checkpoint):
        raise CheckpointError(f"{source} is damaged: its contents do not match the {DIGEST_ALGORITHM} digest stored "
                              f"in it when it was saved (a changed byte: a disk or copy error, or an edit)")


def load_checkpoint_file(path: str | Path, map_location: Any = "cpu", mmap: bool = False,
                         weights_only: bool | None = True) -> Any:
    """Read a torch checkpoint file and check it against its digest (`torch.load`'s arguments; `mmap` only applies
    to the zip format).

    Raises:
        FileNotFoundError: there is no file at `path`.
        CheckpointError: the file is empty, no torch checkpoint, unreadable or damaged; for a `.ckpt` file the
            message names the newest other checkpoint in its folder that reads and verifies.
        pickle.UnpicklingError: `weights_only` and the file holds Python objects besides tensors.
    """
    path = Path(path)
    try:
        return _load_verified(path, map_location, mmap, weights_only)
    except CheckpointError as error:
        if path.suffix != CHECKPOINT_SUFFIX:  # pretrained weights: another file beside them is no alternative
            raise
        good = last_good_checkpoint(path.parent, exclude=path)
        alternative = f"the last good checkpoint there: {good}" if good else "no other checkpoint there verifies"
        raise CheckpointError(f"{error}; {alternative}") from error.__cause__


def last_good_checkpoint(folder: str | Path, exclude: str | Path | None = None) -> Path | None:
    """The newest training checkpoint (`*.ckpt`) in `folder` (but `exclude`) that reads and verifies; None if there
    is none."""
    candidates = [path for path in Path(folder).glob(f"*{CHECKPOINT_SUFFIX}")
                  if path.is_file() and path != Path(exclude or "")]
    for path in sorted(candidates, key=lambda path: path.stat().st_mtime, reverse=True):
        try:
            _load_verified(path, "cpu", mmap=True, weights_only=True)
            return path
        except (CheckpointError, pickle.UnpicklingError, OSError):
            continue
    return None


def save_atomically(checkpoint: Mapping[str, Any], path: str | Path) -> None:
    """`torch.save` `checkpoint` to `path` so that `path` holds either its previous contents or all of the new ones,
    also after a kill or a power cut; temporary files of saves killed earlier in its folder are removed.

    Raises:
        CheckpointSaveError: the write failed (e.g. the disk is full); the message names the cause, the file and the
            last good checkpoint in its folder.
    """
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder)
    temporary = folder / f".saving.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        with temporary.open("wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:  # an interrupt too: leave no temporary file behind
        temporary.unlink(missing_ok=True)
        cause = _os_error(error)
        if cause is None:
            raise
        raise _save_error(cause, path) from error
    _sync_folder(folder)  # makes the rename itself durable


def _load_verified(path: Path, map_location: Any, mmap: bool, weights_only: bool | None) -> Any:
    with path.open("rb") as file:
        start = file.read(64)
    if not start:
        raise CheckpointError(f"{path} is empty (0 bytes), not a checkpoint: a save cut short by a kill or a full "
                              f"disk leaves such files")
    if not start.startswith((ZIP_START, PICKLE_START)):
        kind = "a text file" if _is_text(start) else f"data of another kind (it starts with {start[:8]!r})"
        raise CheckpointError(f"{path} is not a checkpoint: it is {kind}, while torch.save writes a zip archive "
                              f"(starting with {ZIP_START!r})")
    try:
        checkpoint = torch.load(path, map_location=map_location, mmap=mmap and start.startswith(ZIP_START),
                                weights_only=weights_only)
    except pickle.UnpicklingError as error:
        if WEIGHTS_ONLY_REFUSAL in str(error):
            raise
        raise _unreadable(path, error) from error
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError) as error:  # what torch's readers raise
        raise _unreadable(path, error) from error
    if isinstance(checkpoint, Mapping):
        verify(checkpoint, path)
    return checkpoint


def _unreadable(path: Path, error: Exception) -> CheckpointError:
    reason = str(error).strip().splitlines()[0].split(". ")[0] if str(error).strip() else type(error).__name__
    return CheckpointError(f"{path} is damaged: torch cannot read it ({reason}), so it was cut short or overwritten")


def _is_text(start: bytes) -> bool:
    try:
        text = start.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(char.isprintable() or char.isspace() for char in text)


def _hash(value: Any, hasher: Any) -> None:
    """Feed `value` to `hasher` with its structure, so that moving a value to another key changes the digest too."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
        tensor = tensor.to_dense() if tensor.layout != torch.strided else tensor
        hasher.update(f"tensor {tensor.dtype} {tuple(tensor.shape)}:".encode())
        hasher.update(tensor.cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, Mapping):
        hasher.update(f"map {len(value)}:".encode())
        for key, item in value.items():
            _hash(key, hasher)
            _hash(item, hasher)
    elif isinstance(value, (list, tuple)):
        hasher.update(f"sequence {len(value)}:".encode())
        for item in value:
            _hash(item, hasher)
    elif isinstance(value, (set, frozenset)):  # its order changes from process to process
        hasher.update(f"set {sorted(repr(item) for item in value)}:".encode())
    elif type(value).__repr__ is object.__repr__:  # such a repr holds a memory address, new in every process
        hasher.update(f"object {type(value).__qualname__};".encode())
    else:
        hasher.update(f"{type(value).__qualname__} {value!r};".encode())


def _remove_leftovers(folder: Path) -> None:
    """Remove the temporary files of saves whose process is gone (a killed save); those of live ones stay."""
    for path in folder.iterdir():
        match = TEMPORARY_FILE.fullmatch(path.name)
        if match and not _process_alive(int(match[1])):
            path.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP):  # filesystems that cannot sync a folder
            raise
    finally:
        os.close(descriptor)


def _os_error(error: BaseException | None) -> OSError | None:
    """The OSError behind `error`: torch.save reports a failed write as a RuntimeError raised while handling it."""
    while error is not None and not isinstance(error, OSError):
        error = error.__cause__ or error.__context__
    return error


def _save_error(error: OSError, path: Path) -> CheckpointSaveError:
    cause = SAVE_CAUSES.get(error.errno, error.strerror or str(error))
    kept = "keeps its previous contents" if path.exists() else "was not created"
    good = last_good_checkpoint(path.parent)
    fix = f"; free space on the disk of {path.parent} (or save elsewhere), then resume" if error.errno in SAVE_CAUSES \
        else ""
    saved = CheckpointSaveError(f"could not save checkpoint {path}: {cause} ({error.strerror or error}); {path.name} "
                                f"{kept}, and the last good checkpoint is {good or 'none (none was saved yet)'}{fix}")
    saved.errno = error.errno
    return saved
