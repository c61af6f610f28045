"""Inception-v3 feature extractors: the standard FID network and the thesis' torchvision variant.

``inception-v3-fid`` (:class:`FIDInceptionV3`)
    The network every published FID/IS/KID number is computed with: the TensorFlow ``inception-2015-12-05``
    graph ported to PyTorch (pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``, also shipped by
    torch-fidelity as ``weights-inception-2015-12-05-6726825d.pth``). The module tree, and so the state-dict
    key names and shapes, are those of that file: torchvision's ``Inception3`` trunk without ``AuxLogits``
    (``Conv2d_1a_3x3.conv.weight``, ``Conv2d_1a_3x3.bn.running_mean``, ..., ``Mixed_7c.branch_pool.bn.bias``,
    ``fc.weight (1008, 2048)``, ``fc.bias (1008,)``), with the TF-compatible blocks of pytorch-fid
    (``FIDInceptionA/C/E_1/E_2``: average pools that do not count the zero padding, and a *max* pool in the
    last block's pool branch, as the TF graph has).

    Input pipeline, as torch-fidelity's ``FeatureExtractorInceptionV3`` (and so torchmetrics with
    ``antialias=False``): uint8 ``(N, 3, H, W)`` -> float32 -> bilinear resize to 299x299 **as TensorFlow 1.x
    ``tf.image.resize_bilinear(align_corners=False)``** (source coordinate ``dst * in / out``, no half-pixel
    offset, no antialiasing; :func:`resize_bilinear_tf1`) -> ``(x - 128) / 128`` -> network. Outputs
    ``features`` = the 2048-d global average pool ("pool3") and ``logits`` = the 1008-way ``fc`` output
    (classes 1..1000 are ImageNet; torch-fidelity's IS uses these logits).

    Note: pytorch-fid itself resizes with ``F.interpolate(mode="bilinear", align_corners=False)``, i.e.
    half-pixel centres, which is *not* the TF resize; its FIDs differ from TF/torch-fidelity ones slightly.
    This module follows TF/torch-fidelity.

``inception-v3-thesis`` (:class:`ThesisInceptionV3`)
    What the thesis measured with (thesis ``fid.py``): torchvision's ImageNet ``inception_v3`` (checkpoint
    ``inception_v3_google-0cc3c7bd.pth`` / the older ``-1a9a5a14``), ``fc`` -> identity for the 2048-d
    features and the original ``fc`` + softmax (1000 classes) for IS, ``transform_input=False``, input
    ``Resize(299)`` -> ``CenterCrop(299)`` -> each *batch* min/max-rescaled to [0, 1] -> ImageNet
    mean/std. Its numbers are **not comparable** with any published FID (different weights, different
    resize, and a batch-dependent input scaling); it exists only to compare with the thesis' own tables.

Neither network's weights can be downloaded in tests: pass ``weights=PATH`` to a local file. Without it,
``FIDInceptionV3`` fetches the standard URL through ``torch.hub`` only when ``download=True`` and the machine
is online; otherwise both raise :class:`FileNotFoundError` saying where to put the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fashion_gans.metrics.features import FeatureExtractor

__all__ = [
    "FID_WEIGHTS_URL",
    "FID_WEIGHTS_FILENAME",
    "THESIS_WEIGHTS_FILENAME",
    "resize_bilinear_tf1",
    "FIDInceptionV3",
    "ThesisInceptionV3",
    "default_weights_dir",
]

FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
THESIS_WEIGHTS_FILENAME = "inception_v3_google-0cc3c7bd.pth"
INPUT_SIZE = 299


def default_weights_dir() -> Path:
    """Where weights files are looked for when no path is given: ``$FASHION_GANS_WEIGHTS`` or
    ``torch.hub.get_dir()/checkpoints`` (where ``torch.hub`` downloads them)."""
    env = os.environ.get("FASHION_GANS_WEIGHTS")
    return Path(env) if env else Path(torch.hub.get_dir()) / "checkpoints"


def _missing(filename: str, what: str, extra: str = "") -> FileNotFoundError:
    where = default_weights_dir() / filename
    return FileNotFoundError(
        f"{what}: weights file not found. Put {filename} at {where} (or anywhere, and pass weights=PATH; "
        f"the directory can be set with $FASHION_GANS_WEIGHTS){extra}")


def _load_state_dict(path: str | os.PathLike, what: str) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"{path}: cannot read {what} weights ({exc})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


def _strict_load(module: nn.Module, state: dict, path, what: str, ignore_prefixes: tuple[str, ...] = ()) -> None:
    state = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    own = module.state_dict()
    # Old checkpoints (this one included) carry no BatchNorm ``num_batches_tracked``; it is unused in eval.
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: {tuple(state[k].shape)} != {tuple(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        raise ValueError(f"{path}: not a {what} state dict: missing {missing[:5]}{'...' if len(missing) > 5 else ''}"
                         f", unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
                         f", shape mismatches {shapes[:5]}")
    module.load_state_dict(state, strict=False)


# --------------------------------------------------------------------------------------------- the resize
def resize_bilinear_tf1(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize exactly as TensorFlow 1.x ``resize_bilinear(align_corners=False)`` and torch-fidelity's
    ``interpolate_bilinear_2d_like_tensorflow1x(method="slow")``.

    Output pixel ``i`` reads source coordinate ``s = i * (in / out)`` (no half-pixel offset), computed in
    float32; ``lo = floor(s)``, ``hi = min(lo + 1, in - 1)``; linear interpolation along x, then along y,
    with torch-fidelity's order of operations (``a + (b - a) * t``) so float32 results agree bit for bit.
    It differs from ``F.interpolate(..., align_corners=False)`` (half-pixel centres, used by pytorch-fid).
    """
    if x.ndim != 4 or not torch.is_floating_point(x):
        raise ValueError(f"resize_bilinear_tf1: expected a float (N, C, H, W) tensor, got "
                         f"{x.dtype} {tuple(x.shape)}")
    out_h, out_w = int(size[0]), int(size[1])
    in_h, in_w = x.shape[2], x.shape[3]

    def axis(n_out: int, n_in: int):
        scale = torch.tensor(n_in / n_out, dtype=torch.float32)
        s = torch.arange(0, n_out, 1, dtype=x.dtype, device=x.device) * scale.to(x.device)
        lo = s.long()
        hi = (lo + 1).clamp_max(n_in - 1)
        return lo, hi, s - lo.to(s.dtype)

    ylo, yhi, dy = axis(out_h, in_h)
    xlo, xhi, dx = axis(out_w, in_w)
    rows_lo, rows_hi = x[:, :, ylo, :], x[:, :, yhi, :]
    in_00, in_01 = rows_lo[:, :, :, xlo], rows_lo[:, :, :, xhi]
    in_10, in_11 = rows_hi[:, :, :, xlo], rows_hi[:, :, :, xhi]
    dx = dx.view(1, 1, 1, out_w)
    in_0 = in_00 + (in_01 - in_00) * dx
    in_1 = in_10 + (in_11 - in_10) * dx
    return in_0 + (in_1 - in_0) * dy.view(1, 1, out_h, 1)


# --------------------------------------------------------------------------------------------- FID Inception
class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm(eps=1e-3) -> ReLU; keys ``conv.weight``, ``bn.*``."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pool does not count the zero padding.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionC(nn.Module):
    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionE(nn.Module):
    """``Mixed_7b`` (``max_pool=False``: TF average pool) and ``Mixed_7c`` (``max_pool=True``: the TF graph
    max-pools in this block's pool branch, unlike the Inception paper)."""

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionV3(FeatureExtractor):
    """The standard FID Inception-v3 (TF 2015-12-05 weights): uint8 images -> 2048-d pool3 features and
    1008 logits. See the module docstring for the exact input pipeline.

    ``weights``: a local ``.pth``/``.safetensors`` state dict in pytorch-fid's layout. ``None`` looks for
    ``pt_inception-2015-12-05-6726825d.pth`` in :func:`default_weights_dir`, then downloads it from
    :data:`FID_WEIGHTS_URL` via ``torch.hub`` if ``download`` is true (never in tests).
    """

    name = "inception-v3-fid"
    feature_dim = 2048
    num_classes = 1008
    input_range = "uint8"

    def __init__(self, weights: str | os.PathLike | None = None, *, download: bool = False,
                 load_weights: bool = True) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, max_pool=False)
        self.Mixed_7c = FIDInceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)
        if load_weights:
            self.load_weights(weights, download=download)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def load_weights(self, weights: str | os.PathLike | None = None, *, download: bool = False) -> None:
        what = "standard FID Inception-v3"
        if weights is None:
            local = default_weights_dir() / FID_WEIGHTS_FILENAME
            if local.is_file():
                weights = local
            elif download:
                state = torch.hub.load_state_dict_from_url(FID_WEIGHTS_URL, map_location="cpu", progress=True)
                _strict_load(self, state, FID_WEIGHTS_URL, what)
                return
            else:
                raise _missing(FID_WEIGHTS_FILENAME, what, f"; it is published at {FID_WEIGHTS_URL} "
                               "(or pass download=True when online)")
        _strict_load(self, _load_state_dict(weights, what), weights, what)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised ``(N, 3, 299, 299)`` input -> ``(N, 2048)`` pool3 features."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, C, H, W)`` -> the network input: TF-1 bilinear resize to 299, then ``(x - 128) / 128``.
        Grey images are repeated to 3 channels (as torch-fidelity's tests do for MNIST)."""
        x = self.convert_input(images)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = resize_bilinear_tf1(x, (INPUT_SIZE, INPUT_SIZE))
        return (x - 128) / 128

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.trunk(self.preprocess(images))
        return {"features": features, "logits": self.fc(features)}


# --------------------------------------------------------------------------------------------- thesis variant
class ThesisInceptionV3(FeatureExtractor):
    """torchvision's ImageNet Inception-v3 with the thesis' preprocessing (``fid.py``): NOT comparable with
    published FIDs (see the module docstring). ``weights``: a local torchvision ``inception_v3`` state dict
    (``inception_v3_google-0cc3c7bd.pth``); the ``AuxLogits`` entries are ignored."""

    name = "inception-v3-thesis"
    feature_dim = 2048
    num_classes = 1000
    input_range = "unit"

    def __init__(self, weights: str | os.PathLike | None = None, *, load_weights: bool = True) -> None:
        super().__init__()
        from torchvision.models import inception_v3
        from torchvision.transforms.v2 import functional as TF

        self._tf = TF
        net = inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=False)
        self.fc = net.fc
        net.fc = nn.Identity()
        self.net = net
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        if load_weights:
            what = "torchvision ImageNet Inception-v3"
            if weights is None:
                weights = default_weights_dir() / THESIS_WEIGHTS_FILENAME
                if not weights.is_file():
                    raise _missing(THESIS_WEIGHTS_FILENAME, what)
            state = _load_state_dict(weights, what)
            state = {("fc." + k[len("fc."):] if k.startswith("fc.") else "net." + k): v for k, v in state.items()}
            _strict_load(self, state, weights, what, ignore_prefixes=("net.AuxLogits.",))
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        x = self.convert_input(images)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        # Thesis transforms: Resize(299) (shorter side, bilinear; the 2021 tensor path had no antialiasing)
        # -> CenterCrop(299) -> per-batch min/max rescale to [0, 1] -> ImageNet normalisation.
        x = self._tf.resize(x, [INPUT_SIZE], antialias=False)
        x = self._tf.center_crop(x, [INPUT_SIZE, INPUT_SIZE])
        lo, hi = x.min(), x.max()
        x = (x - lo) / (hi - lo).clamp_min(1e-12)
        return (x - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.net(self.preprocess(images))
        return {"features": features, "logits": self.fc(features)}
