"""X-ViT space-time mixing attention (Bulat et al., NeurIPS 2021): video attention at the cost of space-only.

Each frame attends within its own 1 + S tokens, as in a space-only model, but part of the channels of its keys
and values come from the previous and the next frame, so every layer widens the temporal receptive field by
one frame each way. Channel layout as in the official code (`TemporalShift`): of the flattened heads × head_dim
channels of k and v, [0, fold) come from frame t + 1, [fold, 2 fold) from frame t - 1 and the rest from t, with
fold = dim // shift_div; the first and last frames get zeros where they have no neighbour; cls tokens too. A wider
temporal window t_w (the paper's Table 1) takes channels from frames t ± 1 .. t ± t_w, the same mixed fraction
split among them (our reading: the paper gives no channel layout for t_w = 2). With `segment_frames` below the clip
length (the official `NUM_SEGMENTS`), frames mix only within each run of that many frames, as the released
Kinetics models do: 16 frames, mixed in two runs of 8.

The clip is read out from the T per-frame cls tokens by the module `XViT.readout` builds.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import nn

from lightning_video.models.attention import Attention
from lightning_video.models.block import Block, TokenGrid, layer_norm
from lightning_video.models.readout import Readout
from lightning_video.models.scheme import Scheme

Mix = Literal["kv", "k", "v", "input", "none"]
Temporal = Literal["mean", "ta", "summary"]
MixLayers = Literal["all", "first_half", "second_half", "odd"]
MIXES: tuple[str, ...] = get_args(Mix)
MIX_LAYERS: tuple[str, ...] = get_args(MixLayers)
TEMPORALS: tuple[str, ...] = get_args(Temporal)
HEAD_NORM_EPS = 1e-5  # the official TA head's LayerNorms: nn.LayerNorm's default


def mix_from_neighbour_frames(x: torch.Tensor, frames: int, fold: int, window: int = 1) -> torch.Tensor:
    """`[batch * frames, tokens, channels]` with, for each distance d = 1 .. `window`, channels [(2d - 2) fold,
    (2d - 1) fold) taken from frame t + d and the next `fold` from frame t - d, zeros where that frame does not
    exist; the other channels stay. `window` 1 is the official layout."""
    clips = x.unflatten(0, (-1, frames))  # [batch, frames, tokens, channels]; pad counts from the last axis
    shifted = []
    for distance in range(1, window + 1):
        first = 2 * (distance - 1) * fold
        later = clips[:, distance:, :, first:first + fold]
        earlier = clips[:, :-distance, :, first + fold:first + 2 * fold]
        shifted += [nn.functional.pad(later, (0, 0, 0, 0, 0, frames - later.shape[1])),
                    nn.functional.pad(earlier, (0, 0, 0, 0, frames - earlier.shape[1], 0))]
    return torch.cat([*shifted, clips[..., 2 * window * fold:]], dim=-1).flatten(0, 1)


class XViTAttention(Attention):
    """Attention within each frame whose keys and values carry channels of the neighbour frames.

    Args:
        mix: what is shifted between frames: keys and values ("kv", the paper's best), keys ("k") or values
            ("v") only, the input before `qkv` ("input", so queries are mixed too) or nothing ("none").
        frames: frames per clip; the frames of one clip are adjacent in the batch axis.
        segment_frames: the frames of each run that mixes within itself (frames of two runs exchange nothing);
            None is the whole clip.
        fold: channels taken from each neighbour frame.
        window: the temporal window t_w: neighbours up to `window` frames away.
        summary: append the keys and values of every frame's summary token (see `XViT`) to each frame's.
        The other arguments are `Attention`'s.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, *, mix: Mix, frames: int, fold: int, window: int = 1,
                 summary: bool = False, segment_frames: int | None = None) -> None:
        super().__init__(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop)
        self.mix = mix
        self.frames = frames
        self.segment_frames = segment_frames or frames
        self.fold = fold
        self.window = window
        self.summary = summary

    def forward(self, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """Attend within each frame of `x` `[batch * frames, 1 + patches, dim]`; `cls_only` as in
        `Attention.forward`."""
        frames, run = self.frames, self.segment_frames
        mixed = mix_from_neighbour_frames(x, run, self.fold, self.window) if self.mix == "input" else x
        q, k, v = self.qkv(mixed).chunk(3, dim=-1)
        if self.mix in ("kv", "k"):
            k = mix_from_neighbour_frames(k, run, self.fold, self.window)
        if self.mix in ("kv", "v"):
            v = mix_from_neighbour_frames(v, run, self.fold, self.window)
        if self.summary:
            _, k_summary, v_summary = self.qkv(x[:, 1:].mean(dim=1)).chunk(3, dim=-1)
            k, v = (torch.cat([own, summary.unflatten(0, (-1, frames)).repeat_interleave(frames, dim=0)], dim=1)
                    for own, summary in ((k, k_summary), (v, v_summary)))
        heads = (t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2) for t in (q, k, v))
        return self.output(self._attend(*heads, cls_only))


class FrameAverage(Readout):
    """The paper's temporal averaging: the mean of the normed per-frame cls features, which under the linear
    `head` is the mean of the per-frame predictions (the official code averages those); `head_drop` drops each
    frame's feature on its own, as the official `base_model.head` Dropout does before `new_fc`."""

    def read(self, cls: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        return self.head_drop(norm(cls)).mean(dim=1)


class TemporalAttentionHead(Readout):
    """The official TA head (`VitHead`) up to its last Linear, which is the backbone's `head`: a zero-initialised
    cls token before the T frame features, transformer blocks without qkv bias and without position embedding
    (as there), then LayerNorm → Linear → GELU → Dropout (`head_drop`, as the official `MODEL.DROPOUT_RATE`) on the
    cls output. Names follow the official ones
    (`cls_token`, `temporal_encoder.N`, `mlp_head.0/1`) so its weights load by name. Its LayerNorms, in the blocks
    and the MLP, have PyTorch's default eps 1e-5, as the official ones (the backbone's have 1e-6): with the other
    eps the released weights give other logits, by up to 1% of their size where a feature's spread is small.

    Its init is the official one too: `VitHead.__init__` (`slowfast/models/head_helper.py`) initialises nothing but
    its zero `cls_token`, and `XVIT.__init__` (`video_model_builder.py`) builds it apart from the timm backbone whose
    `apply(_init_weights)` sets the truncated-normal ViT init, so every Linear in it, the classifier `mlp_head.4`
    included (`init_classifier`), keeps `nn.Linear`'s own (uniform, bound 1/sqrt(fan_in), bias too). This matters
    beyond faithfulness: with the ViT init's std 0.02 instead, the head passes the backbone a gradient ten times
    smaller, and kv mixing with the TA head stayed at chance on the synthetic `motion` task where with this init it
    learns (docs/results/tables.md, the X-ViT table)."""

    def __init__(self, dim: int, num_heads: int, num_frames: int, mlp_ratio: float, head_drop: float,
                 layers: int) -> None:
        super().__init__(head_drop)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        grid = TokenGrid(frames=1, height=1, width=num_frames + 1)
        self.temporal_encoder = nn.ModuleList(Block(dim, num_heads, grid, mlp_ratio=mlp_ratio, qkv_bias=False,
                                                    norm_eps=HEAD_NORM_EPS) for _ in range(layers))
        self.mlp_head = nn.Sequential(layer_norm(dim, HEAD_NORM_EPS), nn.Linear(dim, dim), nn.GELU(),
                                      nn.Dropout(head_drop))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """`[B, T, D]` normed per-frame cls features -> `[B, D]`."""
        x = torch.cat([self.cls_token.expand(frames.shape[0], -1, -1), frames], dim=1)
        for block in self.temporal_encoder:
            x = block(x)
        return self.mlp_head(x[:, 0])

    def read(self, cls: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        return self(self.head_drop(norm(cls)))

    def init_classifier(self, head: nn.Linear) -> None:
        """`head` is the official `mlp_head.4`, which, as every Linear of the head, keeps `nn.Linear`'s own init."""
        head.reset_parameters()


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class XViT(Scheme):
    """X-ViT space-time mixing: each frame attends within itself, part of its keys and values from its neighbours.

    The blocks are the image ViT block (`norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp`, so ViT weights load by
    name) with `XViTAttention`, on the frame layout; the backbone adds `time_embed[t]` (zero-initialised) to every
    token of frame t.

    Args:
        mix: what is shifted between neighbour frames, see `XViTAttention` ("kv", "k", "v", "input", "none").
        shift_div: fold = dim // shift_div channels come from each neighbour: 4 mixes ρ = 50% (the paper's SSv2
            setting), 8 mixes 25% (Kinetics), 2 mixes all.
        window: the temporal window t_w: 1 (the paper's best and the official code: frames t - 1 and t + 1) or
            more; with t_w = 2, fold = dim // (2 shift_div) channels come from each of t ± 1 and t ± 2, so the
            mixed fraction stays what `shift_div` says.
        mix_layers: which layers mix, the others attending as space-only (the paper's "which layers" ablation):
            "all", "first_half", "second_half", "odd" (layers 1, 3, 5, ... counted from 1), or a list of indices
            counted from 0.
        temporal: how the clip is read out from the T per-frame cls tokens: "mean" (temporal averaging), "ta"
            (`TemporalAttentionHead`), or "summary": averaging, and in every mixing layer a summary token per
            frame, the mean of its normed patch tokens (the paper's φ = spatial average, R = 1; cls left out, as
            it is no spatial position), is projected by the layer's own `qkv` and the keys and values of the
            clip's T summaries are appended to every frame's: each query sees 1 + S + T keys, extra cost O(T S).
        temporal_layers: transformer blocks in the "ta" head (paper: 1, 2 and 3 do equally well).
        segment_frames: frames mix only within consecutive runs of this many frames (the official `NUM_SEGMENTS`),
            none across the boundary between two runs; the readout still reads every frame, and the summary tokens
            still come from the whole clip. None (the default) is the clip length. The released Kinetics models use
            8 at 16 frames; a divisor of `num_frames`.
    """

    layout = "frame"

    def __init__(self, mix: Mix = "kv", shift_div: int = 4, window: int = 1,
                 mix_layers: MixLayers | Sequence[int] = "all", temporal: Temporal = "mean",
                 temporal_layers: int = 1, segment_frames: int | None = None) -> None:
        if mix not in MIXES:
            raise ValueError(f"unknown mix {mix!r}; valid: {', '.join(MIXES)}")
        if not _is_count(shift_div) or shift_div < 2:
            raise ValueError(f"shift_div={shift_div!r}: valid values are integers from 2 (all channels mixed) to "
                             f"embed_dim (one channel from each neighbour)")
        if not _is_count(window) or window < 1:
            raise ValueError(f"window={window!r}: valid values are integers >= 1 with shift_div * window <= "
                             f"embed_dim (one channel from each neighbour); t_w = 0 is mix='none'")
        if mix_layers not in MIX_LAYERS and (isinstance(mix_layers, str) or not isinstance(mix_layers, Sequence)
                                             or not all(map(_is_count, mix_layers))):
            raise ValueError(f"mix_layers={mix_layers!r}: valid values are {', '.join(MIX_LAYERS)} or a list of "
                             f"layer indices >= 0")
        if temporal not in TEMPORALS:
            raise ValueError(f"unknown temporal {temporal!r}; valid: {', '.join(TEMPORALS)}")
        if not _is_count(temporal_layers) or temporal_layers < 1:
            raise ValueError(f"temporal_layers={temporal_layers!r}: valid values are integers >= 1")
        if segment_frames is not None and (not _is_count(segment_frames) or segment_frames < 1):
            raise ValueError(f"segment_frames={segment_frames!r}: valid values are None (the whole clip) or an "
                             f"integer >= 1 that divides num_frames")
        self.mix = mix
        self.shift_div = shift_div
        self.window = window
        self.mix_layers = mix_layers
        self.temporal = temporal
        self.temporal_layers = temporal_layers
        self.segment_frames = segment_frames

    def check(self, grid: TokenGrid, dim: int) -> None:
        if self.shift_div > dim:
            raise ValueError(f"shift_div={self.shift_div}: valid values are integers from 2 (all channels mixed) to "
                             f"embed_dim={dim} (one channel from each neighbour)")
        if self.shift_div * self.window > dim:
            raise ValueError(f"window={self.window}: valid values are integers >= 1 with shift_div * window <= "
                             f"embed_dim={dim} (one channel from each neighbour)")
        if self.segment_frames is not None and grid.frames % self.segment_frames:
            raise ValueError(f"segment_frames={self.segment_frames} does not divide num_frames={grid.frames}: valid "
                             f"values are None (the whole clip) or a divisor of num_frames")

    def mixes(self, layer_index: int, depth: int) -> bool:
        """Whether the layer at `layer_index` of `depth` mixes (`mix_layers`)."""
        if isinstance(self.mix_layers, str):
            return {"all": True, "first_half": layer_index < depth / 2, "second_half": layer_index >= depth / 2,
                    "odd": layer_index % 2 == 0}[self.mix_layers]
        return layer_index in self.mix_layers

    def attention(self, dim: int, num_heads: int, grid: TokenGrid, layer_index: int, depth: int,
                  **kwargs) -> Attention:
        mixing = self.mixes(layer_index, depth)
        return XViTAttention(dim, num_heads, mix=self.mix if mixing else "none", frames=grid.frames,
                             fold=dim // (self.shift_div * self.window), window=self.window,
                             summary=mixing and self.temporal == "summary", segment_frames=self.segment_frames,
                             **kwargs)

    def readout(self, dim: int, num_heads: int, num_frames: int, mlp_ratio: float, head_drop: float) -> Readout:
        if self.temporal == "ta":
            return TemporalAttentionHead(dim, num_heads, num_frames, mlp_ratio, head_drop, self.temporal_layers)
        return FrameAverage(head_drop)
