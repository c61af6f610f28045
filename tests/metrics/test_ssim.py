"""SSIM against torchmetrics on [0, 1] and basic properties."""

from __future__ import annotations

import pytest
import torch

from fashion_gans.metrics import ssim
from fashion_gans.metrics.ssim import to_unit


def test_ssim_matches_torchmetrics_unit_range():
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 32, 32, generator=gen)
    y = (x + 0.15 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    ours = ssim(x, y, data_range=1.0)
    ref = tm_ssim(y, x, data_range=1.0, reduction="none")
    assert ours.shape == (4,)
    assert torch.allclose(ours, ref.to(ours.dtype), atol=1e-5)
    assert 0.1 < float(ours.mean()) < 0.99
    # "valid" keeps only full windows: the reflect-padded map's interior.
    valid = ssim(x, y, data_range=1.0, padding="valid")
    assert not torch.allclose(valid, ours, atol=1e-4)


def test_ssim_properties_and_conversion():
    gen = torch.Generator().manual_seed(1)
    u8 = torch.randint(0, 256, (3, 1, 28, 28), generator=gen, dtype=torch.uint8)
    x = to_unit(u8)
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert torch.allclose(ssim(x, x, data_range=1.0), torch.ones(3, dtype=x.dtype))
    y = to_unit(torch.randint(0, 256, (3, 1, 28, 28), generator=gen, dtype=torch.uint8))
    assert torch.allclose(ssim(x, y, 1.0), ssim(y, x, 1.0))
    assert float(ssim(x, 1 - x, 1.0).mean()) < 0
    # [-1, 1] floats map to the same [0, 1] images as their uint8 quantisation.
    signed = u8.double() / 127.5 - 1
    assert torch.allclose(to_unit(signed), x)
    with pytest.raises(ValueError, match="same shape"):
        ssim(x, y[:2], 1.0)
