"""Weights by name: a timm model name or a Hugging Face Hub repo id, resolved to a file in the local Hugging Face
cache, so `--model.pretrained timm/vit_base_patch16_224.augreg_in21k` works as it does in timm and transformers.

    local_weights("timm/vit_base_patch16_224.augreg_in21k")   # the Hub repo timm publishes the weights in
    local_weights("vit_base_patch16_224.augreg_in21k")        # a timm name: timm's pretrained config names the repo
    local_weights("facebook/timesformer-base-finetuned-k400") # any Hub repo holding a model.safetensors (or .bin)

A file is downloaded into the cache (`HF_HOME`, `HF_HUB_CACHE`) when online and read from it otherwise
(`HF_HUB_OFFLINE=1`, or no network): a name not in the cache then fails, naming the cache and how to fill it.
"""
from __future__ import annotations

from pathlib import Path

from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, LocalEntryNotFoundError,
                                    RepositoryNotFoundError)

# The weight files a Hub repo may hold, in the order they are tried (timm and transformers write the first).
HUB_FILES = ("model.safetensors", "pytorch_model.bin")


def is_weights_name(source: str | Path) -> bool:
    """Whether `source` names weights on the Hub rather than a local file or directory: it does not exist here, has
    no weight file's suffix (a timm name's tag, `.augreg_in21k`, looks like a suffix too) and is `name` (timm) or
    `owner/repo` (no deeper path, not absolute or relative)."""
    from lightning_video.models.weights import FILE_SUFFIXES  # here: weights.py imports this module

    text = str(source)
    if Path(text).exists() or Path(text).suffix in FILE_SUFFIXES or text.startswith((".", "/", "~")):
        return False
    return text.count("/") <= 1 and all(text.split("/"))


def local_weights(source: str | Path) -> Path:
    """The local file or directory of `source`: itself when it is a path, else the named weights in the HF cache.

    Raises:
        ValueError: a timm name timm does not know, or a repo the Hub does not have (or keeps gated).
        FileNotFoundError: the named weights are neither in the cache nor downloadable (offline, or no network).
    """
    if not is_weights_name(source):
        return Path(source)
    repo_id, files = _hub_repo(str(source))
    for filename in files:
        try:
            return Path(hf_hub_download(repo_id, filename))
        except LocalEntryNotFoundError as error:  # not cached, and the Hub is off or unreachable: the cache alone
            return _cached(repo_id, files, source, error)
        except EntryNotFoundError:  # the repo has no such file
            continue
        except (RepositoryNotFoundError, GatedRepoError) as error:
            raise ValueError(f"--model.pretrained {source}: no such file here, and the Hugging Face Hub has no repo "
                             f"{repo_id} open to this machine ({type(error).__name__}); check the name, or log in "
                             f"(`hf auth login`) for a gated one") from error
    raise ValueError(f"--model.pretrained {source}: the Hub repo {repo_id} has none of {', '.join(files)}")


def _cached(repo_id: str, files: tuple[str, ...], source: str | Path, offline: Exception) -> Path:
    """The first of `files` in the local cache, without asking the Hub again (each ask retries for half a minute)."""
    for filename in files:
        path = try_to_load_from_cache(repo_id, filename)
        if isinstance(path, str):
            return Path(path)
    how = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the Hub could not be reached"
    raise FileNotFoundError(f"--model.pretrained {source}: no such file here, and {repo_id} is not in the local "
                            f"Hugging Face cache {constants.HF_HUB_CACHE} and {how}. Fill the cache on a machine "
                            f"online (`hf download {repo_id} {files[0]}`, the same HF_HOME), or give the weight "
                            f"file's path") from offline


def _hub_repo(name: str) -> tuple[str, tuple[str, ...]]:
    """The Hub repo of a name and the files to try: `owner/repo` as it is, a timm name through timm's pretrained
    config (which knows each model's default tag and repo: `vit_base_patch16_224` is its `.augreg2_in21k_ft_in1k`)."""
    if "/" in name:
        return name, HUB_FILES
    try:
        from timm.models import get_pretrained_cfg
    except ImportError as error:
        raise ValueError(f"--model.pretrained {name}: a timm model name needs timm (`pip install "
                         f"lightning-video[hf]`); or give its Hub repo, timm/{name}") from error
    config = get_pretrained_cfg(name)
    if config is None or not config.hf_hub_id:
        raise ValueError(f"--model.pretrained {name}: no such file here, and timm has no pretrained weights of that "
                         f"name on the Hub; its names are model.tag, e.g. vit_base_patch16_224.augreg_in21k "
                         f"(`timm.list_pretrained()`)")
    return config.hf_hub_id, (config.hf_hub_filename,) if config.hf_hub_filename else HUB_FILES
