"""Space-only attention (TimeSformer "S"): each frame is an image for a ViT; frames meet only at the end.

The backbone runs every frame as its own sequence with its own cls token and averages the T outputs
before the final norm; there is no temporal embedding (official code), so the model cannot see order.
"""
from lightning_video.models.block import Block


class SpaceBlock(Block):
    frame_wise = True
    has_time_embed = False
