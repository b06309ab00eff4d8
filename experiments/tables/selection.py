"""Which row of a table to pick, chosen on the validation split alone: picking the row with the best test number
and then reporting that number overstates it (the test split would have been used to choose), so the test column is
only read off the row validation chose."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

CHOSEN_ON = "val_top1"  # the validation top-1 of the checkpoint each run tested (`run_folder.py`)
MARK = "✓"


@dataclass(frozen=True)
class Choice:
    """The chosen row's setting (None when no row can be chosen) and a sentence saying which and why, or why not."""

    setting: str | None
    sentence: str


def candidates(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows a choice is made among: the table's own, not the pretraining runs they start from (another task)."""
    return [line for line in lines if not line.get("pretraining")]


def choose(lines: list[dict[str, Any]]) -> Choice:
    """The row with the highest mean validation top-1 over its seeds, the first in table order among equals, from
    `render.summary`'s lines; none when a row has no validation figure for every seed (runs recorded before
    validation was), as choosing among the others would be choosing on what happens to be recorded."""
    rows = candidates(lines)
    missing = [line["setting"] for line in rows if line.get(CHOSEN_ON) is None]
    if not rows:
        return Choice(None, "")
    if len(missing) == len(rows):
        return Choice(None, "No row is chosen: these runs recorded no validation top-1 (they ran before it was kept); "
                            "run the table again to choose on validation.")
    if missing:
        return Choice(None, f"No row is chosen: {', '.join(missing)} recorded no validation top-1 for every seed "
                            f"(run before it was kept); run them again to choose on validation.")
    best = max(line[CHOSEN_ON] for line in rows)
    chosen, *tied = [line for line in rows if math.isclose(line[CHOSEN_ON], best)]  # a mean's rounding is no lead
    ties = f", tied with {', '.join(line['setting'] for line in tied)}: the first in table order" if tied else ""
    test = f"; its test top-1 {chosen['top1']:.3f} is the number to report" if chosen.get("top1") is not None else ""
    return Choice(chosen["setting"], f"{MARK} Chosen on validation: **{chosen['setting']}** (val top-1 "
                                     f"{best:.3f}{ties}){test}.")
