"""Small real images for the metric tests (first 2,000 Fashion-MNIST test images)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def fashion_mnist_images(fashion_mnist_dir) -> torch.Tensor:
    path = Path(fashion_mnist_dir) / "t10k-images-idx3-ubyte.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with gzip.open(path, "rb") as f:
        data = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return torch.from_numpy(data[: 2000 * 784].reshape(2000, 1, 28, 28).copy())
