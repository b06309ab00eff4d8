"""Joint space-time attention (TimeSformer "ST"): every token attends to all T × H × W tokens and the cls."""
from lightning_video.models.scheme import Scheme


class Joint(Scheme):
    """Full attention over the clip sequence: the base scheme, run on the clip layout."""
