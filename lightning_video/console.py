"""The `lightning-video` console script and `python -m lightning_video`: the CLI (`cli.main`) without third-party
deprecation noise. The filters are installed here, in the command's process only and before the CLI imports the
libraries that warn at import (pytorchvideo calls `torch.jit.script`), not in library code, where they would hide the
same warnings from the projects that import lightning_video."""
from __future__ import annotations

import logging
import warnings

# (category, message regex) of warnings a user can do nothing about: they come from pinned third-party code.
NOISE = [
    (FutureWarning, r"`torch\.jit\.script(_method)?` is deprecated"),  # pytorchvideo's import-time jit decorators
    (Warning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),  # Lightning's own pytree helper, every step
]
# Log lines that advertise rather than inform: Lightning's tip to install its cloud logger, at every fit.
ADVERTS = ("💡 Tip: ",)


class _NoAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(ADVERTS)


def quiet_third_party() -> None:
    """Filter the known third-party noise out of this process's warnings and Lightning's log."""
    for category, message in NOISE:
        warnings.filterwarnings("ignore", message, category)
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_NoAdverts())


def run() -> None:
    """The console script: without this wrapper the CLI object `cli.main` returns would print as the exit message."""
    quiet_third_party()
    from lightning_video.cli import main  # after the filters: importing it imports pytorchvideo

    main()
