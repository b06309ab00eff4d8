"""Joint space-time attention (TimeSformer "ST"): every token attends to all T × H × W tokens and the cls."""
from lightning_video.models.block import Block


class JointSpaceTimeBlock(Block):
    """Full attention over the clip sequence: the base block, run on the clip layout."""
