"""An ablation table as its YAML file in `experiments/ablations/` says: a base config per preset and the rows, each a
setting and the config keys it changes (mmaction2-style: a variant holds only what differs from its base)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

ABLATIONS_DIR = Path(__file__).resolve().parents[1] / "ablations"


@dataclass(frozen=True)
class Row:
    """One setting of a table: the dotted LightningCLI keys it sets, the paper's number for it ("" if none), and a
    config of its own if it does not run on the preset's (a pretraining run)."""

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
class Preset:
    """What a table runs on: `config` (a LightningCLI config file), its rows, the seeds each row runs with, runs
    to make first (`pretrain`: each one's last checkpoint becomes `${its setting}` for the rows), and how many rows
    run at once (`jobs`: 1 where a row takes the whole machine, as a GPU run does)."""

    config: str
    rows: list[Row]
    seeds: list[int]
    pretrain: list[Row] = field(default_factory=list)
    jobs: int = 1


@dataclass(frozen=True)
class Ablation:
    name: str
    title: str
    paper_source: str
    presets: dict[str, Preset]

    def preset(self, name: str) -> Preset:
        if name not in self.presets:
            raise ValueError(f"ablation {self.name!r} has no preset {name!r}; valid: {', '.join(self.presets)}")
        return self.presets[name]


def available() -> list[str]:
    return sorted(path.stem for path in ABLATIONS_DIR.glob("*.yaml"))


def load(name: str) -> Ablation:
    """The table `experiments/ablations/NAME.yaml`, or the YAML file `name` (a table of your own). A preset may give
    its own `rows` and `seeds`; otherwise it uses the file's (seeds default to [0]). A preset's `set` holds keys every
    one of its rows sets (a row's own value wins)."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else ABLATIONS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown ablation {name!r}; valid: {', '.join(available())}, cost, or a YAML file's path")
    spec = yaml.safe_load(path.read_text())
    presets = {}
    for preset_name, preset in spec["presets"].items():
        rows = [Row(**row) for row in preset.get("rows", spec.get("rows", []))]
        settings = [row.setting for row in rows]
        if len(set(settings)) != len(settings):
            raise ValueError(f"{path}: preset {preset_name!r} repeats a setting name: {settings}")
        rows = [replace(row, set={**preset.get("set", {}), **row.set}) for row in rows]
        presets[preset_name] = Preset(preset["config"], rows, list(preset.get("seeds", spec.get("seeds", [0]))),
                                      [Row(**step) for step in preset.get("pretrain", [])], preset.get("jobs", 1))
    return Ablation(path.stem, spec["title"], spec.get("paper_source", ""), presets)
