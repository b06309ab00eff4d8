"""Space-only attention (TimeSformer "S"): each frame is an image for a ViT; frames meet only at the end.

The backbone runs every frame as its own sequence with its own cls token, and the readout averages the T cls
outputs before the final norm; there is no temporal embedding (official code), so the model cannot see order.
"""
from lightning_video.models.scheme import Scheme


class Space(Scheme):
    """Full attention within each frame."""

    layout = "frame"
    time_embed = False
