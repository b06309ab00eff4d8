"""Make pytorchvideo 0.1.5 (the newest release) import with the pinned torchvision.

`pytorchvideo.transforms.augmentations` imports `torchvision.transforms.functional_tensor`, which torchvision
0.17 renamed to `_functional_tensor` with the same signatures. We alias the old name to it. (Aliasing to
`torchvision.transforms.functional` instead imports fine but breaks the affine augmentations of RandAugment
and AugMix at run time: its `affine` takes different arguments.) Imported by `lightning_video/__init__.py`,
so it runs before anything of ours touches pytorchvideo.
"""
import sys

import torchvision.transforms._functional_tensor as functional_tensor

sys.modules.setdefault("torchvision.transforms.functional_tensor", functional_tensor)
