"""Attention rollout through each scheme's own attention steps: which input patches reach the clip feature.

Rollout (Abnar & Zuidema, 2020) follows the residual stream: each attention step mixes tokens by `normalise(A + I)`,
its weights A (heads fused by mean or max, optionally the lowest `discard_ratio` of them zeroed, as in Gildenblat's
vit-explain) plus the identity of its residual, each row renormalised; the MLP mixes no tokens. The product of every
step's matrix, read at the row of the token(s) the readout takes, gives each input patch's share.

A factorised block (divided, axial, local-global) is the product of its steps' matrices, each assembled from the maps
of its groups: a patch's row holds its group's weights, the cls token's row the mean of its copies' rows (the block
averages their updates, `Block.attend_groups_with_cls`), and a token that sits a step out keeps its identity row. The
steps are recorded while the scheme runs them (the `Block.attend_*` helpers it is made of), so every scheme built from
those helpers is explained with no code of its own. Space-only and X-ViT have one sequence per frame, each with its
own cls token; the readout's average of them (or, with X-ViT's TA head, the rollout through that head's own blocks)
weighs the frames.

X-ViT is an approximation. Its frame t attends over keys and values whose channels come partly from frames t ± d,
so one weight reads several frames at once; we split it between them by the share of the head's value channels each
frame supplies (found by running `mix_from_neighbour_frames` on frame numbers, so the layout is the scheme's own).
This follows the values only: a mix of the keys alone ("k") moves no content between frames in this view. With
`mix="input"` every head's values depend on all input channels, so each head gets the clip-wide share.

The maps are the explicit softmax of the visualised clip (`Attention.keep_attention_map`, on only inside `rollout` and
`cls_attention`): training keeps the fused kernels. The cost is one tokens × tokens matrix per step of the clip, which
is fine at ViT-B/16 8 × 224 (1569 tokens: 10 MB each) but grows with the square of the clip's tokens.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal, NamedTuple, get_args

import torch

from lightning_video.models.attention import Attention
from lightning_video.models.block import Block
from lightning_video.models.grouping import Grouping
from lightning_video.models.video_transformer import VideoTransformer
from lightning_video.models.xvit import TemporalAttentionHead, XViTAttention, mix_from_neighbour_frames

HeadFusion = Literal["mean", "max"]
HEAD_FUSIONS: tuple[str, ...] = get_args(HeadFusion)


class Explanation(NamedTuple):
    """What a clip's attention says and what the model predicts from it.

    Attributes:
        heat: `[batch, frames, height, width]`, one value per input patch, in frame order and row-major within the
            frame (however the scheme lays its tokens out).
        logits: `[batch, classes]`, from the same forward pass.
    """

    heat: torch.Tensor
    logits: torch.Tensor


class Step(NamedTuple):
    """One attention step of one block as recorded, in the clip's token numbering (`Tokens`).

    Attributes:
        queries: `[groups, members]` the token each query of each group is; a token may query in several groups
            (the cls token's copies).
        weights: `[batch, groups, heads, members, keys]`, the softmax of the step; its keys are the group's members,
            then, in an X-ViT layer with summary tokens, the clip's frame summaries.
        attention: the layer that computed it.
    """

    queries: torch.Tensor
    weights: torch.Tensor
    attention: Attention


class Mixing(NamedTuple):
    """A step as weights between tokens: group g's query i reads token `keys[g, k]` with `weights[..., g, :, i, k]`
    (a token may appear more than once among a group's keys)."""

    queries: torch.Tensor
    keys: torch.Tensor
    weights: torch.Tensor


class Tokens(NamedTuple):
    """How a clip's tokens are numbered here: the backbone's sequences of one clip, in its order, end to end."""

    count: int
    is_cls: torch.Tensor  # [count] bool
    frames: int
    height: int
    width: int
    layout: str

    @classmethod
    def of(cls, model: VideoTransformer) -> Tokens:
        grid = model.grid
        if model.scheme.layout == "frame":  # T sequences of (cls, H·W patches)
            count = grid.frames * (1 + grid.patches_per_frame)
            is_cls = torch.arange(count) % (1 + grid.patches_per_frame) == 0
        else:  # one sequence: cls, then the H·W·T patches, space-major, time-minor
            count = 1 + grid.frames * grid.patches_per_frame
            is_cls = torch.arange(count) == 0
        return cls(count, is_cls, grid.frames, grid.height, grid.width, model.scheme.layout)

    def patch_map(self, values: torch.Tensor) -> torch.Tensor:
        """`[batch, count]` per token -> `[batch, frames, height, width]` per patch."""
        batch = values.shape[0]
        if self.layout == "frame":
            return values.view(batch, self.frames, -1)[:, :, 1:].reshape(batch, self.frames, self.height, self.width)
        return values[:, 1:].reshape(batch, self.height, self.width, self.frames).permute(0, 3, 1, 2)


def rollout(model: VideoTransformer, video: torch.Tensor, head_fusion: HeadFusion = "mean",
            discard_ratio: float = 0.0) -> Explanation:
    """Attention rollout of `video` `[batch, C, T, H, W]` from the clip feature back to the input patches.

    Args:
        model: the backbone; it runs in eval mode and without gradients here, and is left as it was.
        head_fusion: how a step's heads become one map: their "mean" (the TimeSformer paper's figure) or "max".
        discard_ratio: in each group's fused map, zero this fraction of the lowest weights (never the cls token's
            weight on itself) before adding the residual, which sharpens the map.
    Returns:
        `heat` (on the CPU): each patch's share of the clip feature (the rest stays with the cls token(s)).
    """
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio={discard_ratio}: valid values are in [0, 1)")
    tokens = Tokens.of(model)
    logits, blocks, head_blocks = _recorded_forward(model, video)
    mixings = [_token_mixing(step, tokens.frames, mix_shares=True) for steps in blocks for step in steps]
    readout = _readout_weights(tokens, head_blocks, logits, head_fusion)
    heat = _rolled_back(readout, mixings, tokens, head_fusion, discard_ratio)
    return Explanation(tokens.patch_map(heat), logits)


def cls_attention(model: VideoTransformer, video: torch.Tensor, layer: int,
                  head_fusion: HeadFusion = "mean") -> Explanation:
    """The cls token's own attention weights on the patches in block `layer` (negative counts from the end): of
    the block's step in which the cls token queries (each of its copies over its group's patches; X-ViT's frame cls
    tokens over their frames' patches, neighbour channels not followed), heads fused. Unlike `rollout`, one layer's
    softmax, nothing composed."""
    depth = len(model.blocks)
    if not -depth <= layer < depth:
        raise ValueError(f"layer={layer}: the model has {depth} blocks; valid layers are 0..{depth - 1} (or "
                         f"-{depth}..-1 from the end)")
    tokens = Tokens.of(model)
    logits, blocks, _ = _recorded_forward(model, video)
    with_cls = [step for step in blocks[layer] if tokens.is_cls[step.queries].any()]
    if not with_cls:
        raise ValueError(f"in block {layer} of attention={model.attention!r} the cls token queries in no step")
    mixing = _token_mixing(with_cls[-1], tokens.frames, mix_shares=False)
    weights = _fused(mixing.weights, head_fusion) * tokens.is_cls[mixing.queries][..., None].to(mixing.weights)
    from_cls = weights.sum(dim=2).flatten(1)  # [batch, groups * keys]: each cls query's row, its copies apart
    heat = from_cls.new_zeros(from_cls.shape[0], tokens.count).index_add_(1, mixing.keys.flatten(), from_cls)
    return Explanation(tokens.patch_map(heat), logits)


def _recorded_forward(model: VideoTransformer, video: torch.Tensor
                      ) -> tuple[torch.Tensor, list[list[Step]], list[list[Step]]]:
    """The logits of `video` and the steps of each block, and of the blocks of X-ViT's TA head, if it has one."""
    head = model.temporal_head
    head_blocks = list(head.temporal_encoder) if isinstance(head, TemporalAttentionHead) else []
    batch, was_training = video.shape[0], model.training
    with contextlib.ExitStack() as stack:
        blocks = stack.enter_context(_recording(list(model.blocks), Tokens.of(model).count, batch))
        head_steps = stack.enter_context(_recording(head_blocks, 1 + model.grid.frames, batch))
        stack.enter_context(model.as_written())  # every token of the last block too
        stack.enter_context(torch.no_grad())
        model.eval()
        try:
            logits = model.forward(video)  # eager even where the model is compiled (`VideoClassifier.compile`)
        finally:
            model.train(was_training)
    for index, steps in enumerate(blocks):
        if not steps:
            raise RuntimeError(f"block {index} of attention={model.attention!r} ran no step rollout can see: its "
                               f"scheme's `attend` must use the Block.attend_sequence / attend_groups_with_cls / "
                               f"attend_groups helpers")
    return logits, blocks, head_steps


@contextlib.contextmanager
def _recording(blocks: list[Block], tokens: int, batch: int) -> Iterator[list[list[Step]]]:
    """Inside: `blocks` keep their attention maps, and each block's list records the steps its scheme runs. The
    blocks' sequences hold `tokens` tokens per clip in all (one sequence, or one per frame), `batch` clips."""
    recorded: list[list[Step]] = [[] for _ in blocks]
    attentions = [module for block in blocks for module in block.modules() if isinstance(module, Attention)]
    for attention in attentions:
        attention.keep_attention_map = True
    try:
        for block, steps in zip(blocks, recorded):
            _record_steps(block, steps, tokens, batch)
        yield recorded
    finally:
        for block in blocks:
            for name in ("attend_sequence", "attend_groups_with_cls", "attend_groups"):
                block.__dict__.pop(name, None)
        for attention in attentions:
            attention.keep_attention_map = False
            attention.last_attention_map = None


def _record_steps(block: Block, steps: list[Step], tokens: int, batch: int) -> None:
    """Wrap `block`'s step helpers, on the instance, so that each appends its `Step` to `steps`."""
    sequence, groups_with_cls, groups = block.attend_sequence, block.attend_groups_with_cls, block.attend_groups

    def attend_sequence(x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        out = sequence(x, cls_only)
        steps.append(_step(block.attn, torch.arange(tokens).view(x.shape[0] // batch, -1), batch))
        return out

    def attend_groups_with_cls(cls: torch.Tensor, patches: torch.Tensor, grouping: Grouping,
                               cls_only: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = groups_with_cls(cls, patches, grouping, cls_only)
        members = _patch_tokens(grouping, patches.shape[1])
        steps.append(_step(block.attn, torch.cat([torch.zeros_like(members[:, :1]), members], dim=1), batch))
        return out

    def attend_groups(patches: torch.Tensor, grouping: Grouping, extra_attention: str) -> torch.Tensor:
        out = groups(patches, grouping, extra_attention)
        steps.append(_step(getattr(block, f"{extra_attention}_attn"), _patch_tokens(grouping, patches.shape[1]),
                           batch))
        return out

    block.attend_sequence, block.attend_groups_with_cls, block.attend_groups = (
        attend_sequence, attend_groups_with_cls, attend_groups)


def _patch_tokens(grouping: Grouping, patches: int) -> torch.Tensor:
    """`[groups, members]`: the token number of each member of each group (patch p is token 1 + p), by the
    grouping's own `split`."""
    return grouping.split(torch.arange(patches).view(1, patches, 1))[0, ..., 0] + 1


def _step(attention: Attention, queries: torch.Tensor, batch: int) -> Step:
    weights = attention.last_attention_map
    if weights is None or weights.shape[-2] != queries.shape[-1]:
        raise RuntimeError(f"{type(attention).__name__} kept no attention map of all its queries: rollout needs the "
                           f"explicit softmax of every step, every token querying (VideoTransformer.as_written)")
    # On the CPU, in float32 at least: one clip's maps are small, the token numbering lives there, and the products
    # of many steps want the precision.
    weights = weights.to("cpu", torch.promote_types(weights.dtype, torch.float32))
    return Step(queries, weights.unflatten(0, (batch, -1)), attention)


def _token_mixing(step: Step, frames: int, mix_shares: bool) -> Mixing:
    """The step as weights between the clip's tokens. In an X-ViT layer, frame t's weight on key j is split between
    token j of the frames its value channels come from (`mix_shares`; else frame t keeps it all), and its weight on
    frame t''s summary key is spread evenly over that frame's patches (the summary is their mean)."""
    if not isinstance(step.attention, XViTAttention):
        return Mixing(step.queries, step.queries, step.weights)
    heads, members = step.weights.shape[2], step.queries.shape[1]
    own, summary = step.weights.split([members, step.weights.shape[-1] - members], dim=-1)
    shares = _value_shares(step.attention, frames, heads) if mix_shares else torch.eye(frames).unsqueeze(-1)
    # weights[b, t, h, i, t', j] = own[b, t, h, i, j] * shares[t, t', h]
    weights = own.unsqueeze(-2) * shares.to(own).permute(0, 2, 1)[None, :, :, None, :, None]
    if summary.shape[-1]:
        weights[..., 1:] += summary.unsqueeze(-1) / (members - 1)
    return Mixing(step.queries, torch.arange(frames * members).expand(frames, -1), weights.flatten(-2))


def _value_shares(attention: XViTAttention, frames: int, heads: int) -> torch.Tensor:
    """`[frames, frames, heads]`: the share of head h's value channels in frame t that come from frame t'."""
    if attention.mix not in ("kv", "v", "input"):
        return torch.eye(frames).unsqueeze(-1).expand(-1, -1, heads)
    run, channels = attention.segment_frames, attention.qkv.in_features
    numbers = torch.arange(1.0, run + 1).view(run, 1, 1).expand(run, 1, channels).contiguous()
    source = mix_from_neighbour_frames(numbers, run, attention.fold, attention.window)[:, 0] - 1  # -1: zero padding
    from_frame = (source.unsqueeze(1) == torch.arange(run).view(1, run, 1)).double()  # [t, t', channels]
    if attention.mix == "input":  # every head's values are computed from all the mixed input channels
        in_run = from_frame.mean(-1, keepdim=True).expand(-1, -1, heads)
    else:
        in_run = from_frame.unflatten(-1, (heads, -1)).mean(-1)
    shares = in_run.new_zeros(frames, frames, heads)
    for start in range(0, frames, run):  # runs of `segment_frames` frames exchange nothing
        shares[start:start + run, start:start + run] = in_run
    return shares


def _fused(weights: torch.Tensor, head_fusion: HeadFusion) -> torch.Tensor:
    """`[batch, groups, heads, queries, keys]` -> `[batch, groups, queries, keys]`."""
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"unknown head_fusion {head_fusion!r}; valid: {', '.join(HEAD_FUSIONS)}")
    return weights.mean(dim=2) if head_fusion == "mean" else weights.amax(dim=2)


def _step_matrix(mixing: Mixing, tokens: Tokens, head_fusion: HeadFusion, discard_ratio: float) -> torch.Tensor:
    """`[batch, tokens, tokens]`: `normalise(A + I)` of the step, A its fused weights, each cls token's row the mean
    of its copies' rows and the row of a token that sits the step out its identity."""
    weights = _fused(mixing.weights, head_fusion)
    if discard_ratio:
        keep = tokens.is_cls[mixing.queries].unsqueeze(-1) & (mixing.queries.unsqueeze(-1) == mixing.keys.unsqueeze(-2))
        weights = _discard_lowest(weights, keep, discard_ratio)
    batch, count = weights.shape[0], tokens.count
    rows = mixing.queries.unsqueeze(-1).expand(-1, -1, mixing.keys.shape[-1])
    entries = (rows * count + mixing.keys.unsqueeze(1)).flatten()
    attention = weights.new_zeros(batch, count * count).index_add_(1, entries, weights.flatten(1)).view(batch, count,
                                                                                                      count)
    copies = torch.bincount(mixing.queries.flatten(), minlength=count).to(weights)
    attention = attention / copies.clamp(min=1).unsqueeze(-1) + torch.diag((copies == 0).to(weights))
    residual = attention + torch.eye(count, dtype=weights.dtype)
    return residual / residual.sum(dim=-1, keepdim=True)


def _discard_lowest(weights: torch.Tensor, keep: torch.Tensor, ratio: float) -> torch.Tensor:
    """`weights` `[batch, groups, queries, keys]` with the lowest `ratio` of each group's weights set to zero, except
    where `keep` `[groups, queries, keys]` is set (vit-explain's rule: one fewer is then discarded)."""
    flat = weights.flatten(2)
    lowest = flat.topk(int(flat.shape[-1] * ratio), largest=False).indices
    return torch.where(keep, weights, flat.scatter(-1, lowest, 0.0).view_as(weights))


def _rolled_back(readout: torch.Tensor, mixings: list[Mixing], tokens: Tokens, head_fusion: HeadFusion,
                 discard_ratio: float) -> torch.Tensor:
    """`readout` `[batch, tokens]` (the weight of each token in the clip feature) carried back through the steps, last
    to first: the readout's row of the product of the step matrices, at a matrix-vector product per step."""
    weights = readout
    for mixing in reversed(mixings):
        weights = torch.bmm(weights.unsqueeze(1), _step_matrix(mixing, tokens, head_fusion, discard_ratio)).squeeze(1)
    return weights


def _readout_weights(tokens: Tokens, head_blocks: list[list[Step]], logits: torch.Tensor,
                     head_fusion: HeadFusion) -> torch.Tensor:
    """`[batch, tokens]`: what the clip feature takes from each token of the last block: the clip's cls token, or the
    mean of the frames' cls tokens, or, with X-ViT's TA head, the rollout of its head cls token back to them."""
    cls_tokens = tokens.is_cls.nonzero().squeeze(-1)
    batch, dtype = logits.shape[0], torch.promote_types(logits.dtype, torch.float32)
    if head_blocks:
        head_tokens = Tokens(1 + tokens.frames, torch.arange(1 + tokens.frames) == 0, tokens.frames, 1, 1, "clip")
        head_cls = torch.zeros(batch, head_tokens.count, dtype=dtype)
        head_cls[:, 0] = 1.0
        mixings = [_token_mixing(step, tokens.frames, mix_shares=False) for steps in head_blocks for step in steps]
        per_frame = _rolled_back(head_cls, mixings, head_tokens, head_fusion, 0.0)[:, 1:]
    else:
        per_frame = torch.full((batch, len(cls_tokens)), 1.0 / len(cls_tokens), dtype=dtype)
    readout = torch.zeros(batch, tokens.count, dtype=dtype)
    readout[:, cls_tokens] = per_frame
    return readout
