"""Lightning's model summary without its FLOPs column and `Total Flops` line: Lightning counts FLOPs only through an
`example_input_array`, so for this model it printed 0 right under `ComputeMonitor`'s GFLOPs (fvcore, the papers'
count), which are the numbers to read."""
from __future__ import annotations

import logging
from typing import Any

from pytorch_lightning.callbacks import ModelSummary
from pytorch_lightning.utilities.model_summary.model_summary import _format_summary_table

log = logging.getLogger("pytorch_lightning.callbacks.model_summary")  # where Lightning's summary is logged


class SummaryWithoutFlops(ModelSummary):
    """Lightning's summary table (layers, parameters, sizes, modes), less the FLOPs it cannot count here."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int, trainable_parameters: int,
                  model_size: float, total_training_modes: dict[str, int], total_flops: int,
                  **summarize_kwargs: Any) -> None:
        table = _format_summary_table(total_parameters, trainable_parameters, model_size, total_training_modes,
                                      total_flops, *(column for column in summary_data if column[0] != "FLOPs"))
        log.info("\n" + table.rsplit("\n", 1)[0])  # the last line is the FLOPs total
