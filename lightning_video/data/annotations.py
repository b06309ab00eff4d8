"""Problems in a dataset's annotation files, gathered while the layout readers parse them and reported together.

A wrong label used to surface mid-training as `Target 5 is out of bounds`, naming no file; a second wrong label
then cost a second run. Each reader instead notes every problem it meets (the file, the line or JSON entry, the
value, and the fix) and skips the line, and the caller raises one AnnotationError for all the splits it needs,
before the first step.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One bad place in an annotation file.

    Args:
        file: the annotation file (or files).
        where: "line 3", "entry 2" (of a JSON list), or "" for the whole file.
        value: the offending text, "" when there is none (an empty file).
        what: what is wrong with it.
        fix: what to change.
    """

    file: str
    where: str
    value: str
    what: str
    fix: str

    def __str__(self) -> str:
        place = f"{self.file}, {self.where}" if self.where else self.file
        value = f" {self.value!r}" if self.value else ""
        return f"{place}:{value} {self.what}; {self.fix}"


class AnnotationError(ValueError):
    """All the problems found in the annotation files of the splits a run needs (duplicates listed once)."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(dict.fromkeys(problems))
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count > 1 else ''} in the dataset's annotation files, found before "
                         f"training (fix {'them' if count > 1 else 'it'}, then run again; `check-data` lists them "
                         f"too):\n" + "\n".join(f"  {problem}" for problem in self.problems))


class Problems:
    """The problems met while reading one split, and the parsing steps every layout shares."""

    def __init__(self) -> None:
        self.found: list[Problem] = []

    def add(self, file: str | Path, where: str, value: object, what: str, fix: str) -> None:
        self.found.append(Problem(str(file), where, str(value), what, fix))

    def raise_if_any(self) -> None:
        if self.found:
            raise AnnotationError(self.found)

    def lines(self, path: Path, fix: str) -> list[tuple[int, str]]:
        """(line number, stripped text) of the non-blank lines (the official UCF101 and HMDB51 lists have Windows
        line ends and trailing spaces); an empty file is a problem."""
        lines = [(number, line.strip()) for number, line in enumerate(path.read_text().splitlines(), start=1)
                 if line.strip()]
        if not lines:
            self.add(path, "", "", "is empty", fix)
        return lines

    def json(self, path: Path, kind: type, fix: str) -> Any:
        """The parsed file if it is valid JSON of `kind` (list or dict) and not empty, else an empty `kind`."""
        try:
            parsed = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            self.add(path, f"line {error.lineno}", error.doc.splitlines()[error.lineno - 1][:80] if error.doc else "",
                     f"is not valid JSON ({error.msg}, column {error.colno})", fix)
            return kind()
        if not isinstance(parsed, kind):
            self.add(path, "", "", f"holds a JSON {type(parsed).__name__}, not a {kind.__name__}", fix)
            return kind()
        if not parsed:
            self.add(path, "", "", "is empty", fix)
        return parsed

    def entries(self, path: Path, keys: tuple[str, str], fix: str) -> Iterator[tuple[int, dict]]:
        """(entry number from 1, entry) of a JSON list of objects, each holding both `keys`; others are noted."""
        listed = f"{fix} (a list of {{{keys[0]}, {keys[1]}, ...}})"
        for number, entry in enumerate(self.json(path, list, listed), start=1):
            if isinstance(entry, dict) and set(keys) <= entry.keys():
                yield number, entry
            else:
                self.add(path, f"entry {number}", json.dumps(entry)[:80], f"needs both `{keys[0]}` and `{keys[1]}`",
                         fix)

    def class_index(self, value: object, file: Path, where: str, classes: int | None, named_in: str) -> int | None:
        """`value` as a class index below `classes` (the count of the names in `named_in`; None: not known yet, only
        checked to be a non-negative integer); None if it is not one."""
        try:
            index = int(str(value))
        except ValueError:
            index = None
        known = f"0 to {classes - 1}" if classes is not None else "from 0"
        if index is None or isinstance(value, bool):
            self.add(file, where, value, "is not an integer label",
                     f"labels are class indices ({known}) into the class names of {named_in}")
        elif index < 0 or (classes is not None and index >= classes):
            outside = f"the {classes} classes named in {named_in} (labels {known})" if classes is not None else \
                "the class indices (labels count from 0)"
            self.add(file, where, value, f"is outside {outside}", f"correct the label, or name its class in {named_in}")
        else:
            return index
        return None

def spans(numbers: Iterable[int]) -> str:
    """Sorted integers as runs: `0-3, 5, 7-9` (400 labels stay readable)."""
    runs: list[list[int]] = []
    for number in sorted(set(numbers)):
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ", ".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)
