"""What a table is: rows, each a setting and the config keys it changes, run at a scale (a base config, seeds, runs to
make first). An ablation's YAML file (`experiments/tables/ablate.py`) and a wandb sweep's grid
(`experiments/tables/sweep.py`) are both read into one."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import yaml


@dataclass(frozen=True)
class Row:
    """One setting of a table: the dotted LightningCLI keys it sets, the paper's number for it ("" if none), and a
    config of its own if it does not run on the scale's (a pretraining run)."""

    setting: str
    set: dict[str, Any] = field(default_factory=dict)
    paper: str = ""
    config: str | None = None

    def filled(self, variables: dict[str, str]) -> Row:
        """This row with every `${NAME}` in its string values replaced by `variables[NAME]` (a path of weights)."""
        def fill(value: Any) -> Any:
            if not isinstance(value, str):
                return value
            for name in re.findall(r"\$\{(\w+)\}", value):
                if name not in variables:
                    raise ValueError(f"row {self.setting!r} needs ${{{name}}}: pass --weights {name}=PATH")
                value = value.replace(f"${{{name}}}", variables[name])
            return value
        return replace(self, set={key: fill(value) for key, value in self.set.items()})

    def arguments(self) -> list[str]:
        """`--key value` pairs for the command line; other values than strings as YAML, which jsonargparse reads back
        (a bare scalar without the document end, `...`, that YAML adds to it)."""
        return [part for key, value in self.set.items()
                for part in (f"--{key}", value if isinstance(value, str)
                             else yaml.safe_dump(value, default_flow_style=True).removesuffix("...\n").strip())]


@dataclass(frozen=True)
class Scale:
    """What a table runs on at one scale (the synthetic task on a CPU, the paper's dataset on GPUs): `config` (a
    LightningCLI config file), its rows, the seeds each row runs with, runs to make first (`pretrain`: each one's last
    checkpoint becomes `${its setting}` for the rows), and how many rows run at once (`jobs`: 1 where a row takes the
    whole machine, as a GPU run does)."""

    config: str
    rows: list[Row]
    seeds: list[int]
    pretrain: list[Row] = field(default_factory=list)
    jobs: int = 1


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    paper_source: str
    scales: dict[str, Scale]

    def scale(self, name: str) -> Scale:
        if name not in self.scales:
            raise ValueError(f"table {self.name!r} has no scale {name!r}; valid: {', '.join(self.scales)}")
        return self.scales[name]
