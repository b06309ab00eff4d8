"""Tiny real datasets, made once per test session with the project's own generator."""
from __future__ import annotations

from pathlib import Path

import pytest

from lightning_video.data.synthetic import generate


@pytest.fixture(scope="session")
def motion_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `motion` task, 4 training videos per class (2 for val and test), 32×32, 16 frames."""
    return generate("motion", tmp_path_factory.mktemp("motion"), videos_per_class=4, seed=0)
