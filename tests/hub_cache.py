"""A local Hugging Face cache filled as `hf_hub_download` leaves it (blobs named by their sha256, a snapshot of links
to them, `refs/main` naming the snapshot's commit), with the files a Hub repo serves, and the Hub set offline: names
resolve from this cache alone, as on a machine without network."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import timm
from huggingface_hub import constants
from timm.models._hub import save_for_hf
from torch import nn

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def offline_cache(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the Hub at an empty cache under `home`, offline (the constants are read at import, so both are set)."""
    cache = home / "hub"
    for name, value in {"HF_HOME": str(home), "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def cache_repo(cache: Path, repo_id: str, folder: Path) -> None:
    """Put the files of `folder` in the cache as the download of `repo_id` at its main branch."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs/main").write_text(COMMIT)
    for file in folder.iterdir():
        content = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(content).hexdigest()
        blob.write_bytes(content)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))


def cache_timm_vit(cache: Path, repo_id: str, folder: Path, safetensors: bool = True, **sizes: int) -> nn.Module:
    """A random timm ViT of `sizes`, saved as timm pushes to the Hub (model.safetensors or, as older repos hold,
    pytorch_model.bin; config.json), in the cache."""
    vit = timm.create_model("vit_base_patch16_224", pretrained=False, **sizes)
    for parameter in vit.parameters():  # no zero init to hide a misplaced tensor
        nn.init.normal_(parameter, std=0.2)
    save_for_hf(vit, str(folder), safe_serialization=safetensors)
    cache_repo(cache, repo_id, folder)
    return vit.eval()
