"""An ablation table as its YAML file in `experiments/ablations/` says: a base config per preset and the rows, each a
setting and the config keys it changes (mmaction2-style: a variant holds only what differs from its base)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ABLATIONS_DIR = Path(__file__).resolve().parents[1] / "ablations"


@dataclass(frozen=True)
class Row:
    """One setting of a table: the dotted LightningCLI keys it sets, and the paper's number for it ("" if none)."""

    setting: str
    set: dict[str, Any] = field(default_factory=dict)
    paper: str = ""

    def arguments(self) -> list[str]:
        """`--key value` pairs for the command line; other values than strings as YAML, which jsonargparse reads back
        (a bare scalar without the document end, `...`, that YAML adds to it)."""
        return [part for key, value in self.set.items()
                for part in (f"--{key}", value if isinstance(value, str)
                             else yaml.safe_dump(value, default_flow_style=True).removesuffix("...\n").strip())]


@dataclass(frozen=True)
class Preset:
    """What a table runs on: `config` (a LightningCLI config file), its rows, and the seeds each row runs with."""

    config: str
    rows: list[Row]
    seeds: list[int]


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
    its own `rows` and `seeds`; otherwise it uses the file's (seeds default to [0])."""
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
        presets[preset_name] = Preset(preset["config"], rows, list(preset.get("seeds", spec.get("seeds", [0]))))
    return Ablation(path.stem, spec["title"], spec.get("paper_source", ""), presets)
