"""Small domain feature extractors the project trains itself (``scripts/train_extractors.py``) and ships.

The thesis computed every metric with an ImageNet Inception, which knows little about clothes (its IS on
fashion data is 3-4, thesis ch. 7 suggests a fashion-trained network). These two networks are trained on
data available here and are small enough to ship inside the package:

``fmnist-classifier``
    Fashion-MNIST's 10 classes. Input: grey (or RGB, averaged) uint8 images, 28x28 (padded with black to
    32x32, as :class:`fashion_gans.data.fashion_mnist.FashionMNIST` pads) or 32x32 (any other size is
    resized to 32). ``features`` = the penultimate layer, ``logits`` = the 10 classes (for IS, and for
    "generated image classified as the target class" in shoes <-> bags).

``synthetic-attributes``
    A multi-head attribute classifier for images of :class:`fashion_gans.data.synthetic.SyntheticWorld`:
    ``domain`` (person / flat / shoe / bag), ``colour`` (main colour of the top garment, the flat garment or
    the accessory), ``pattern``, ``kind`` (the top garment's kind on a person, the garment's kind on a flat
    shot), ``bottom`` (the person's bottoms, ``none`` under a dress), ``material`` and ``shape`` (shoes and
    bags). Input: RGB uint8 of any size, resized to 64x64 (bilinear, antialiased). ``features`` = the
    penultimate layer, ``logits`` = the main head (``colour``), ``heads`` = every head's logits.

Weights live in ``fashion_gans/assets/extractors/<name>/`` as ``model.safetensors`` + ``config.json`` (the
architecture, class names, training command, seed, data and measured held-out accuracy).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fashion_gans.metrics.features import FeatureExtractor

__all__ = ["ASSETS_DIR", "DomainNetConfig", "DomainNet", "DomainExtractor", "fmnist_config",
           "synthetic_attributes_config", "load_domain_extractor"]

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets" / "extractors"


@dataclass
class DomainNetConfig:
    """Architecture and input handling of a :class:`DomainNet` (saved as ``config.json["model"]``)."""

    name: str
    in_channels: int
    image_size: int  # network input side
    pad_from: int | None  # inputs of this side are padded (with black) to image_size instead of resized
    widths: tuple[int, ...]  # channels per stage; every stage halves the resolution
    convs_per_stage: int
    feature_dim: int
    heads: dict[str, list[str]]  # head name -> class names
    main_head: str

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        if self.in_channels not in (1, 3):
            raise ValueError(f"{self.name}: in_channels must be 1 or 3, got {self.in_channels}")
        if not self.widths or self.image_size % (2 ** len(self.widths)):
            raise ValueError(f"{self.name}: image_size {self.image_size} must be divisible by 2**len(widths)")
        if self.main_head not in self.heads:
            raise ValueError(f"{self.name}: main_head {self.main_head!r} is not one of {list(self.heads)}")
        if any(len(v) < 2 for v in self.heads.values()):
            raise ValueError(f"{self.name}: every head needs at least 2 classes")

    @classmethod
    def from_dict(cls, d: dict) -> "DomainNetConfig":
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d


def fmnist_config() -> DomainNetConfig:
    from fashion_gans.data.fashion_mnist import CLASS_NAMES
    return DomainNetConfig(name="fmnist-classifier", in_channels=1, image_size=32, pad_from=28,
                           widths=(32, 64, 128), convs_per_stage=1, feature_dim=128,
                           heads={"class": list(CLASS_NAMES)}, main_head="class")


def synthetic_attributes_config() -> DomainNetConfig:
    from fashion_gans.data import synthetic as sw
    shapes = [f"shoe:{s}" for s in sw.ACCESSORY_SHAPES["shoe"]] + [f"bag:{s}" for s in sw.ACCESSORY_SHAPES["bag"]]
    return DomainNetConfig(
        name="synthetic-attributes", in_channels=3, image_size=64, pad_from=None, widths=(24, 48, 96, 128),
        convs_per_stage=1, feature_dim=192,
        heads={"domain": ["person", "flat", "shoe", "bag"], "colour": list(sw.GARMENT_COLOURS),
               "pattern": list(sw.PATTERNS), "kind": list(sw.GARMENT_KINDS),
               "bottom": list(sw.BOTTOM_KINDS) + ["none"], "material": list(sw.MATERIALS), "shape": shapes},
        main_head="colour")


class DomainNet(nn.Module):
    """Conv3x3-BN-ReLU stages (each ending in a 2x2 max pool) -> flatten -> Linear -> ReLU (the features)
    -> one linear head per attribute. Input: float in [-1, 1]."""

    def __init__(self, cfg: DomainNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        c = cfg.in_channels
        for w in cfg.widths:
            for _ in range(cfg.convs_per_stage):
                layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                c = w
            layers.append(nn.MaxPool2d(2))
        self.trunk = nn.Sequential(*layers)
        side = cfg.image_size // 2 ** len(cfg.widths)
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(c * side * side, cfg.feature_dim), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.2)
        self.heads = nn.ModuleDict({k: nn.Linear(cfg.feature_dim, len(v)) for k, v in cfg.heads.items()})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        f = self.embed(self.trunk(x))
        h = self.dropout(f)
        return f, {k: head(h) for k, head in self.heads.items()}


class DomainExtractor(FeatureExtractor):
    """A trained :class:`DomainNet` behind the :class:`FeatureExtractor` contract (uint8 in, resize inside)."""

    input_range = "signed"

    def __init__(self, cfg: DomainNetConfig, net: DomainNet | None = None, meta: dict | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = net if net is not None else DomainNet(cfg)
        self.meta = dict(meta or {})
        self.feature_dim = cfg.feature_dim
        self.num_classes = len(cfg.heads[cfg.main_head])

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.cfg.name

    @property
    def class_names(self) -> dict[str, list[str]]:
        return self.cfg.heads

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, C, H, W)`` -> float ``(N, in_channels, S, S)`` in [-1, 1]."""
        x = self.convert_input(images)
        if x.shape[1] != self.cfg.in_channels:
            x = x.mean(1, keepdim=True) if self.cfg.in_channels == 1 else x.expand(-1, 3, -1, -1)
        s = self.cfg.image_size
        h, w = x.shape[-2:]
        if (h, w) == (s, s):
            return x
        if self.cfg.pad_from is not None and (h, w) == (self.cfg.pad_from, self.cfg.pad_from):
            a = (s - h) // 2
            return F.pad(x, (a, s - w - a, a, s - h - a), value=-1.0)
        return F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features, heads = self.net(self.preprocess(images))
        return {"features": features, "logits": heads[self.cfg.main_head], "heads": heads}

    # ---- files -------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, meta: dict | None = None) -> Path:
        """Write ``model.safetensors`` and ``config.json`` atomically (temp file + rename each)."""
        return save_net_folder(directory, self.net, self.cfg, meta if meta is not None else self.meta)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "DomainExtractor":
        cfg, net, meta = load_net_folder(directory, DomainNetConfig.from_dict, DomainNet, "a domain extractor",
                                         "scripts/train_extractors.py")
        return cls(cfg, net, meta).requires_grad_(False).eval()


def save_net_folder(directory: str | os.PathLike, net: nn.Module, cfg, meta: dict) -> Path:
    """Write a shipped network folder: ``model.safetensors`` (``net``'s weights) and ``config.json``
    (``{"model": cfg.to_dict(), **meta}``), each atomically (temp file + rename)."""
    from safetensors.torch import save

    from fashion_gans.data.io import atomic_path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(directory / "model.safetensors") as tmp:
        Path(tmp).write_bytes(save(state, metadata={"name": cfg.name}))
    payload = {"model": cfg.to_dict(), **meta}
    with atomic_path(directory / "config.json") as tmp:
        Path(tmp).write_text(json.dumps(payload, indent=2) + "\n")
    return directory


def load_net_folder(directory: str | os.PathLike, make_config, net_class, what: str, how: str):
    """Read a folder written by :func:`save_net_folder`: ``(config, network with its weights, meta)``.
    ``what`` names the kind of network and ``how`` the command that makes it, for the error messages."""
    from safetensors.torch import load_file

    directory = Path(directory)
    cfg_path, weights_path = directory / "config.json", directory / "model.safetensors"
    for p in (cfg_path, weights_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing (train it with {how})")
    try:
        meta = json.loads(cfg_path.read_text())
        cfg = make_config(meta.pop("model"))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{cfg_path}: not {what} config ({exc})") from exc
    net = net_class(cfg)
    try:
        net.load_state_dict(load_file(str(weights_path)))
    except (RuntimeError, OSError) as exc:
        raise ValueError(f"{weights_path}: weights do not match {cfg_path} ({exc})") from exc
    return cfg, net, meta


def load_domain_extractor(name: str, path: str | os.PathLike | None = None) -> DomainExtractor:
    """The shipped extractor ``name`` (or the one saved in ``path``)."""
    return DomainExtractor.from_pretrained(path if path is not None else ASSETS_DIR / name)
