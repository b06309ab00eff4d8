"""ClipSettings: everything a model's predictions depend on besides its weights, kept with them in every checkpoint.

A model trained on 8 frames one every 32, centre-cropped to 224 and normalised with the Kinetics mean scores other
clips wrongly without a word, and its outputs mean nothing without its class names. The data module builds these
settings from its arguments (`VideoDataModule.clip_settings`), the CLI hands them to the model as one object, and the
model saves them as plain data (`to_dict`: a checkpoint stays readable with `torch.load(weights_only=True)`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

# The fields named like the `VideoDataModule` argument they come from (all but `multi_label`, which the layout gives).
DATA_ARGUMENTS = ("num_frames", "sampling_rate", "sampling", "crop_size", "mean", "std", "test_clips", "test_crops",
                  "class_names", "heads")


@dataclass(frozen=True)
class ClipSettings:
    """How clips are made for a model and what its outputs mean.

    Args:
        num_frames: frames per clip.
        sampling_rate: one frame in `sampling_rate` of the video (clip sampling).
        sampling: "clip" (frames at `sampling_rate`) or "segments" (TSN: one frame per segment of the whole video).
        crop_size: side of the square crop.
        mean: per-channel normalisation mean (of frames scaled to [0, 1]).
        std: per-channel normalisation std.
        test_clips: temporal clips per video at test time.
        test_crops: spatial crops per clip at test time (1 centre, or 3 left/centre/right).
        class_names: the label names, the i-th naming output i; with several heads, each head's names in turn.
        multi_label: outputs are independent per class (sigmoid) rather than one distribution (softmax).
        heads: the classifiers of a model that answers several questions at once (Epic-Kitchens: `{"verb": 97,
            "noun": 300}`), each head's class count in the order of its outputs; empty for one head (most datasets).
    """

    num_frames: int
    sampling_rate: int
    sampling: str
    crop_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    test_clips: int
    test_crops: int
    class_names: list[str] = field(default_factory=list)
    multi_label: bool = False
    heads: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.heads and sum(self.heads.values()) != len(self.class_names):
            raise ValueError(f"clip settings name {len(self.class_names)} classes but their heads {self.heads} have "
                             f"{sum(self.heads.values())}: class_names lists each head's names in turn")

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, strings and numbers, as a checkpoint stores them."""
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ClipSettings:
        """The settings `to_dict` gave.

        Raises:
            ValueError: a setting is missing or unknown, naming them.
        """
        names = {setting.name for setting in fields(cls)}
        optional = ("class_names", "multi_label", "heads")  # older checkpoints lack the later ones
        required = {setting.name for setting in fields(cls) if setting.name not in optional}
        missing, unknown = sorted(required - set(values)), sorted(set(values) - names)
        if missing or unknown:
            raise ValueError(f"clip settings {values} lack {', '.join(missing) or 'nothing'} and have unknown "
                             f"{', '.join(unknown) or 'nothing'}; valid: {', '.join(sorted(names))}")
        return cls(**{**values, "mean": tuple(values["mean"]), "std": tuple(values["std"]),
                      "class_names": list(values.get("class_names", [])), "heads": dict(values.get("heads", {}))})

    def data_arguments(self) -> dict[str, Any]:
        """The settings as the `VideoDataModule` arguments that make clips this way."""
        return {name: value for name, value in self.to_dict().items() if name in DATA_ARGUMENTS}
