"""pytorchvideo 0.1.5 against the pinned torchvision and PyAV."""
import lightning_video  # noqa: F401  (installs the compatibility alias)
import torch


def test_pytorchvideo_augmentations_run_on_a_clip():
    from pytorchvideo.transforms import AugMix, RandAugment

    torch.manual_seed(0)
    clip = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)  # [T, C, H, W], as these transforms take
    # prob=1 makes every sampled op run, including the affine ones (shear, translate, rotate) that break
    # when the old module name is aliased to the wrong torchvision module.
    augmented = RandAugment(magnitude=9, num_layers=4, prob=1.0)(clip)
    assert augmented.shape == clip.shape and augmented.dtype == torch.uint8
    assert not torch.equal(augmented, clip)
    mixed = AugMix(magnitude=3, width=3)(clip)
    assert mixed.shape == clip.shape


def test_affine_ops_of_the_aliased_module_take_the_old_signature():
    import torchvision.transforms.functional_tensor as functional_tensor  # the name pytorchvideo imports

    image = torch.rand(3, 16, 16)
    # The old API takes the inverse affine matrix (output pixel -> input pixel): x_in = x_out + 2.
    shifted = functional_tensor.affine(image, matrix=[1.0, 0.0, 2.0, 0.0, 1.0, 0.0], interpolation="nearest")
    assert torch.allclose(shifted[:, :, 2:10], image[:, :, 4:12])
