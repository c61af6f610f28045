"""Typed model configurations and the preset registry.

Every model family has one dataclass.  A configuration is validated when it is built
(``__post_init__``), converts to and from a JSON-compatible ``dict`` (``to_dict`` / ``from_dict``; tuples
become lists and back), and is stored next to the weights in ``config.json``.

Presets:

* ``*_thesis``: the configuration reported in the thesis, whose parameter counts are checked against the
  thesis tables (``scripts/count_params.py``).  Where the thesis text is self-contradictory the preset
  follows the parameter-consistent reading; the erratum is named on the field.
* ``pgpg_256x176``: pose transfer at the standard DeepFashion protocol resolution (PATN split).
* ``*_small``: a few hundred K to a few M parameters, at most 64 px, for tests and the bundled demo weights.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "ConfigError",
    "ModelConfig",
    "PGPGConfig",
    "PixelDTGANConfig",
    "CycleGANConfig",
    "StyleGANConfig",
    "FaderConfig",
    "IcGANConfig",
    "SYNTHETIC_EDIT_ATTRIBUTES",
    "FMNIST_EDIT_ATTRIBUTES",
    "config_from_dict",
    "get_preset",
    "list_presets",
    "PRESET_DESCRIPTIONS",
    "ThesisCount",
    "THESIS_PARAMETER_COUNTS",
    "THESIS_TOTALS",
    "thesis_tolerance",
]

NORMS = ("batch", "instance", "none")


class ConfigError(ValueError):
    """A model configuration is invalid (the message names the field and the problem)."""


def _check(cond: bool, cls_name: str, field_name: str, problem: str) -> None:
    if not cond:
        raise ConfigError(f"{cls_name}.{field_name}: {problem}")


@dataclass
class ModelConfig:
    """Base class: JSON round trip and validation hooks."""

    family: ClassVar[str] = ""

    def __post_init__(self) -> None:
        # JSON gives lists where the dataclass declares tuples.
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list) and "tuple" in str(hints.get(f.name, "")):
                object.__setattr__(self, f.name, tuple(value))
        self.validate()

    def validate(self) -> None:  # pragma: no cover - overridden
        pass

    def to_dict(self) -> dict[str, Any]:
        out = {"family": self.family}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a dict, got {type(data).__name__}")
        data = dict(data)
        family = data.pop("family", cls.family)
        if family != cls.family:
            raise ConfigError(f"{cls.__name__}: config is for model family {family!r}, expected {cls.family!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    def replace(self, **changes: Any) -> "ModelConfig":
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def _size_ok(size: Any) -> bool:
    return (
        isinstance(size, tuple)
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    )


# ---------------------------------------------------------------------------------------------- PGPG
@dataclass
class PGPGConfig(ModelConfig):
    """PGPG / "PoseGAN": G1 U-Net with FC bottleneck, G2 U-Net refiner, conditional PatchGAN."""

    family: ClassVar[str] = "pgpg"

    image_size: tuple[int, int] = (128, 128)  # (H, W); non-square works, the FC size derives from it
    image_channels: int = 3
    # "iuv": DensePose IUV image (3 ch, thesis); "heatmaps": OpenPose-18 keypoint heatmaps (18 ch, PGPG paper)
    pose_encoding: str = "iuv"
    # Thesis listing: BN in every U-Net conv block (the thesis code passed use_bn=False, so its U-Nets had
    # no BN in practice; norm="none" reproduces that).
    norm: str = "batch"
    # G1.  Thesis erratum E4: the listing (UF 6->16, PJ 256->10, FC 2560) gives 8.4M parameters against the
    # stated 276M; base 32 with PJ 512->256 and FC 16384->16384 reproduces 276.04M (spec Appendix A).
    g1_base_channels: int = 32
    # Thesis erratum E3: G1 has 4 blocks, G2 has 6 (the text and the parameter counts; Table 6's code and the
    # thesis code's DefaultConfiguration have them the other way round).
    g1_blocks: int = 4
    g1_stem_kernel: int = 1
    g1_bottleneck_channels: int = 256  # channels of the flattened bottleneck; 0 = no FC bottleneck
    # G2.  Thesis erratum E5: 6 doublings from 32 at 128 px give a 2048 x 2x2 bottleneck, not 1024 x 4x4.
    g2_base_channels: int = 32
    g2_blocks: int = 6
    g2_stem_kernel: int = 7
    g2_dropout: float = 0.2  # Dropout2d in the first half of the encoder
    # D.  Thesis erratum E6: base 16 (not UF 6->8) and a 4x4 map of 32 px cells at 128 px, 1.57M parameters.
    d_base_channels: int = 16
    d_blocks: int = 5
    d_negative_slope: float = 0.0  # ReLU in the PatchGAN blocks (thesis); >0 for LeakyReLU

    @property
    def pose_channels(self) -> int:
        return 3 if self.pose_encoding == "iuv" else 18

    def validate(self) -> None:
        n = type(self).__name__
        _check(_size_ok(self.image_size), n, "image_size", f"expected (H, W) positive ints, got {self.image_size!r}")
        _check(self.pose_encoding in ("iuv", "heatmaps"), n, "pose_encoding",
               f"expected 'iuv' or 'heatmaps', got {self.pose_encoding!r}")
        _check(self.norm in NORMS, n, "norm", f"expected one of {NORMS}, got {self.norm!r}")
        _check(self.image_channels > 0, n, "image_channels", "must be positive")
        for name in ("g1_base_channels", "g2_base_channels", "d_base_channels", "g1_blocks", "g2_blocks", "d_blocks"):
            _check(int(getattr(self, name)) >= 1, n, name, "must be >= 1")
        _check(self.g1_bottleneck_channels >= 0, n, "g1_bottleneck_channels", "must be >= 0")
        _check(0.0 <= self.g2_dropout < 1.0, n, "g2_dropout", "must be in [0, 1)")
        _check(self.g1_stem_kernel % 2 == 1 and self.g2_stem_kernel % 2 == 1, n, "g*_stem_kernel", "must be odd")
        h, w = self.image_size
        for name in ("g1_blocks", "g2_blocks", "d_blocks"):
            k = getattr(self, name)
            _check(min(h, w) >= 2 ** k, n, name, f"{k} halvings do not fit image_size {self.image_size}")
        if self.g1_bottleneck_channels:
            feats = self.g1_bottleneck_features
            _check(feats <= 65536, n, "g1_bottleneck_channels",
                   f"FC bottleneck of {feats} features ({feats * feats / 1e9:.1f}B weights) is too large; "
                   "lower g1_bottleneck_channels")

    @property
    def g1_bottleneck_shape(self) -> tuple[int, int]:
        h, w = self.image_size
        for _ in range(self.g1_blocks):  # max-pool with ceil_mode
            h, w = -(-h // 2), -(-w // 2)
        return h, w

    @property
    def g1_bottleneck_features(self) -> int:
        h, w = self.g1_bottleneck_shape
        return self.g1_bottleneck_channels * h * w


# ---------------------------------------------------------------------------------------------- PixelDTGAN
@dataclass
class PixelDTGANConfig(ModelConfig):
    """PixelDTGAN: encoder/decoder generator (no skips) with a bottleneck vector, D_R and D_A PatchGANs."""

    family: ClassVar[str] = "pixeldtgan"

    image_size: tuple[int, int] = (64, 64)
    image_channels: int = 3
    g_base_channels: int = 128
    g_blocks: int = 4  # stride-2 convs in the encoder, the first (no norm) included
    # Thesis erratum E12: 5x5 kernels in the encoder blocks (as the paper and code) give the stated 37.7M.
    g_kernel: int = 5
    bottleneck_dim: int = 100  # thesis: 100-d (the paper: 64)
    d_base_channels: int = 128
    # Thesis erratum E11: the first CONV3 counts as block 1 of 4, so 128 -> 1024 and PJ 1024->1 (6.20M).
    d_blocks: int = 4
    d_negative_slope: float = 0.0

    def validate(self) -> None:
        n = type(self).__name__
        _check(_size_ok(self.image_size), n, "image_size", f"expected (H, W) positive ints, got {self.image_size!r}")
        for name in ("g_base_channels", "g_blocks", "bottleneck_dim", "d_base_channels", "d_blocks", "image_channels"):
            _check(int(getattr(self, name)) >= 1, n, name, "must be >= 1")
        _check(self.g_kernel % 2 == 1, n, "g_kernel", "must be odd")
        for name in ("g_blocks", "d_blocks"):
            k = getattr(self, name)
            for s in self.image_size:
                _check(s % (2 ** k) == 0, n, name, f"image_size {self.image_size} must be divisible by 2**{k}")


# ---------------------------------------------------------------------------------------------- CycleGAN
GENERATORS = ("resnet", "unet", "discogan", "discogan_adain", "discogan_flow", "discogan_tile")
#: The generators that sample their input (appearance flow, surface tiling): as many output as input channels.
FLOW_GENERATORS = ("discogan_flow", "discogan_tile")


@dataclass
class CycleGANConfig(ModelConfig):
    """DiscoGAN/CycleGAN: two generators (A->B, B->A) and two unconditional PatchGANs."""

    family: ClassVar[str] = "cyclegan"

    image_size: tuple[int, int] = (64, 64)
    channels_a: int = 3
    channels_b: int = 3
    # "resnet" (thesis: CycleGAN's ResNet generator), "unet" (bilinear-upsampling U-Net option) or "discogan"
    # (DiscoGAN's encoder-decoder: g_down stride-2 4x4 convs to a small code, as many 4x4 transposed convs back;
    # no skip connections, so the output's shape is free to differ from the input's)
    generator: str = "resnet"
    g_base_channels: int = 64
    g_down: int = 2
    g_residual_blocks: int = 9
    g_stem_kernel: int = 7  # CycleGAN's 7x7 reflect stem/head (thesis code); 11.38M vs 11.4M stated
    g_norm: str = "instance"
    # "discogan_adain" / "discogan_flow" only: the size of the global style vector of the decoder's AdaIN layers
    g_style_dim: int = 64
    # Flow generators only: 0 (off) or the number of target-domain silhouettes each generator stores.  When on, a
    # generator also reads the silhouette (object mask) of the outline to draw, an exemplar of the target domain:
    # the shape comes from it and the surface from the source, so the cycle term need not hide the source's outline
    # in the translation.  Without a given silhouette the generator draws the first stored one.
    g_shape_bank: int = 0
    # With g_shape_bank, (A -> B generator, B -> A generator): pixels outside the given silhouette take the source's
    # background colour (its corners' mean), so nothing is drawn past the outline (a speckled collar above a low
    # shoe's outline, say).
    g_shape_clip: tuple[bool, bool] = (False, False)
    # "discogan_tile" only, (A -> B generator, B -> A generator): the half size of the box each generator mirrors
    # the copied surface into, in standard deviations of the source object's pixel coordinates (each axis).  A box
    # narrower than a pattern period holds a phase-dependent share of the pattern colour (a low shoe's box is a
    # few pixels tall at 0.5); one too large reaches past the outline (a shoe's sole, the background).
    g_tile: tuple[float, float] = (0.5, 0.5)
    d_base_channels: int = 64
    # Thesis erratum E11: with base 64 the last projection is PJ 512->1 (1.55M, the stated 1.6M).
    d_blocks: int = 4
    d_negative_slope: float = 0.0
    # Discriminator norm after its first block: "instance" (thesis), "batch" or "none".  InstanceNorm rescales
    # every image's features to unit variance, so faint noise on a white field reads as strongly as an object.
    d_norm: str = "instance"

    def validate(self) -> None:
        n = type(self).__name__
        _check(_size_ok(self.image_size), n, "image_size", f"expected (H, W) positive ints, got {self.image_size!r}")
        _check(self.d_norm in ("instance", "batch", "none"), n, "d_norm",
               f"expected 'instance', 'batch' or 'none', got {self.d_norm!r}")
        _check(self.generator in GENERATORS, n, "generator",
               f"expected one of {', '.join(map(repr, GENERATORS))}, got {self.generator!r}")
        _check(self.generator not in FLOW_GENERATORS or self.channels_a == self.channels_b, n,
               "generator", f"{self.generator!r} copies input pixels and needs channels_a == channels_b, got "
               f"{self.channels_a} and {self.channels_b}")
        _check(self.g_norm in NORMS, n, "g_norm", f"expected one of {NORMS}, got {self.g_norm!r}")
        _check(isinstance(self.g_shape_bank, int) and self.g_shape_bank >= 0, n, "g_shape_bank",
               f"expected an int >= 0, got {self.g_shape_bank!r}")
        _check(isinstance(self.g_tile, tuple) and len(self.g_tile) == 2
               and all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0.0 < t <= 2.0 for t in self.g_tile),
               n, "g_tile", f"expected two numbers in (0, 2] (A -> B, B -> A), got {self.g_tile!r}")
        _check(isinstance(self.g_shape_clip, tuple) and len(self.g_shape_clip) == 2
               and all(isinstance(v, bool) for v in self.g_shape_clip), n, "g_shape_clip",
               f"expected two bools (A -> B, B -> A), got {self.g_shape_clip!r}")
        _check(not any(self.g_shape_clip) or self.g_shape_bank > 0, n, "g_shape_clip",
               "clips to a given silhouette: needs g_shape_bank > 0")
        _check(self.g_shape_bank == 0 or self.generator in FLOW_GENERATORS, n, "g_shape_bank",
               f"silhouette conditioning needs a flow generator ({', '.join(map(repr, FLOW_GENERATORS))}), got "
               f"{self.generator!r}")
        for name in ("channels_a", "channels_b", "g_base_channels", "g_down", "g_style_dim", "d_base_channels",
                     "d_blocks"):
            _check(int(getattr(self, name)) >= 1, n, name, "must be >= 1")
        _check(self.g_residual_blocks >= 0, n, "g_residual_blocks", "must be >= 0")
        _check(self.g_stem_kernel % 2 == 1, n, "g_stem_kernel", "must be odd")
        for name in ("g_down", "d_blocks"):
            k = getattr(self, name)
            for s in self.image_size:
                _check(s % (2 ** k) == 0, n, name, f"image_size {self.image_size} must be divisible by 2**{k}")


# ---------------------------------------------------------------------------------------------- StyleGAN
@dataclass
class StyleGANConfig(ModelConfig):
    """StyleGAN (version 1, progressive growing) or StyleGAN2 (version 2, skip G / residual D).

    ``channels`` lists the feature maps per synthesis resolution 4, 8, ..., ``resolution``;
    ``d_channels`` the discriminator's feature maps at the same resolutions (from-RGB output at each).
    """

    family: ClassVar[str] = "stylegan"

    version: int = 1
    resolution: int = 128
    image_channels: int = 3
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 4  # thesis: 4 FC layers instead of StyleGAN's 8
    mapping_activation: str = "relu"  # thesis: ReLU; StyleGAN: "lrelu"
    mapping_lr_mul: float = 0.01
    const_channels: int = 512
    # The thesis calls its channel formula "non-common" and does not give it; this schedule, with the
    # StyleGAN-v1 block layout, gives 58.70M against the stated 58.5M (+0.3%).
    channels: tuple[int, ...] = (1024, 1024, 1024, 512, 128, 64)
    # Discriminator: thesis listing CONV3 3->16, [CONV3 Cin->2Cin, CONV3, AVGPOOL2] x5 (16 -> 512).
    d_channels: tuple[int, ...] = (512, 256, 128, 64, 32, 16)
    mbstd_group: int = 4
    # Thesis deviation 2 dropped deliberately: equalised learning rate is on (its absence, with a naive
    # N(0, 0.05) init, is one of the suspected causes of the thesis' failed StyleGAN run).
    equalized_lr: bool = True
    w_avg_beta: float = 0.995

    @property
    def num_resolutions(self) -> int:
        return self.resolution.bit_length() - 2  # 4 -> 1, 8 -> 2, ..., 128 -> 6

    @property
    def num_ws(self) -> int:
        """Number of per-layer styles (style mixing works on this axis)."""
        # v1: two AdaINs per resolution; v2: 2n-1 modulated convs plus the last toRGB (as StyleGAN2).
        return 2 * self.num_resolutions

    def validate(self) -> None:
        n = type(self).__name__
        _check(self.version in (1, 2), n, "version", f"expected 1 or 2, got {self.version!r}")
        r = self.resolution
        _check(isinstance(r, int) and r >= 4 and (r & (r - 1)) == 0, n, "resolution",
               f"must be a power of 2 >= 4, got {r!r}")
        k = self.num_resolutions
        _check(len(self.channels) == k, n, "channels", f"needs {k} entries (4..{r} px), got {len(self.channels)}")
        _check(len(self.d_channels) == k, n, "d_channels", f"needs {k} entries (4..{r} px), got {len(self.d_channels)}")
        _check(all(int(c) >= 1 for c in self.channels + self.d_channels), n, "channels", "must be positive")
        for name in ("z_dim", "w_dim", "mapping_layers", "const_channels", "mbstd_group", "image_channels"):
            _check(int(getattr(self, name)) >= 1, n, name, "must be >= 1")
        _check(self.mapping_activation in ("relu", "lrelu"), n, "mapping_activation", "expected 'relu' or 'lrelu'")
        _check(0.0 < self.mapping_lr_mul <= 1.0, n, "mapping_lr_mul", "must be in (0, 1]")
        _check(0.0 <= self.w_avg_beta < 1.0, n, "w_avg_beta", "must be in [0, 1)")


# ------------------------------------------------------------------------------------- attribute editing
def _synthetic_edit_attributes() -> dict[str, list[str]]:
    from fashion_gans.data.attributes import SYNTHETIC_ATTRIBUTE_VALUES

    return {name: list(values) for name, values in SYNTHETIC_ATTRIBUTE_VALUES.items()}


def _fmnist_edit_attributes() -> dict[str, list[str]]:
    from fashion_gans.data.fashion_mnist import CLASS_NAMES

    return {"class": list(CLASS_NAMES)}


#: What the synthetic world records of a product photo and the ``synthetic-attributes`` network reads back:
#: the garment's main colour, its pattern and its kind (the attribute sliders of the synthetic presets); lists
#: of :data:`fashion_gans.data.attributes.SYNTHETIC_ATTRIBUTE_VALUES`.
SYNTHETIC_EDIT_ATTRIBUTES: dict[str, list[str]] = _synthetic_edit_attributes()
#: Fashion-MNIST: the class is the one attribute.
FMNIST_EDIT_ATTRIBUTES: dict[str, list[str]] = _fmnist_edit_attributes()


def _attributes_from_pairs(value: Any) -> Any:
    """``[[name, values], ...]`` (how :meth:`FaderConfig.to_dict` / :meth:`IcGANConfig.to_dict` store the
    attributes) -> the ordered dict; anything else unchanged.  The order of the attributes is the order of the
    blocks of the code, and the project's JSON files are written with sorted keys, which would reorder a dict."""
    if isinstance(value, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        return {p[0]: list(p[1]) for p in value}
    return value


def _attributes_to_pairs(attributes: dict) -> list:
    return [[name, list(values)] for name, values in attributes.items()]


def _check_attributes(attributes: Any, n: str) -> None:
    _check(isinstance(attributes, dict) and len(attributes) >= 1, n, "attributes",
           "expected a non-empty mapping attribute name -> list of its values")
    for name, values in attributes.items():
        _check(isinstance(name, str) and bool(name), n, "attributes", f"attribute names must be strings, got {name!r}")
        _check(isinstance(values, (list, tuple)) and len(values) >= 2, n,
               "attributes", f"attribute {name!r} needs a list of at least 2 distinct values, got {values!r}")
        # Value names are what the UI sliders, JSON edit requests and CSV labels spell: strings only.
        bad = [v for v in values if not isinstance(v, str) or not v]
        _check(not bad, n, "attributes", f"attribute {name!r}: values must be non-empty strings, got {bad!r}")
        _check(len(set(values)) == len(values), n, "attributes",
               f"attribute {name!r} needs at least 2 distinct values, got {values!r}")


@dataclass
class _AttributeEditConfig(ModelConfig):
    """What the attribute editors share: a square image size, its channels and the ordered attributes (a mapping
    name -> list of values; saved as a list of ``[name, values]`` pairs so that the order survives JSON files
    written with sorted keys)."""

    image_size: int = 64
    image_channels: int = 3
    attributes: dict = dataclasses.field(default_factory=_synthetic_edit_attributes)

    def __post_init__(self) -> None:
        self.attributes = _attributes_from_pairs(self.attributes)
        super().__post_init__()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["attributes"] = _attributes_to_pairs(self.attributes)  # a list keeps the order under sorted keys
        return out

    def validate(self) -> None:
        n = type(self).__name__
        _check(isinstance(self.image_size, int) and self.image_size >= 8, n, "image_size", "must be an int >= 8")
        _check(self.image_channels in (1, 3), n, "image_channels", "must be 1 or 3")
        _check_attributes(self.attributes, n)

    @property
    def code_size(self) -> int:
        """Length of the attribute code: the sum of every attribute's number of values."""
        return sum(len(v) for v in self.attributes.values())


@dataclass
class FaderConfig(_AttributeEditConfig):
    """Fader Networks (Lample et al., NeurIPS 2017): an encoder-decoder whose latent code is made
    attribute-free by a latent discriminator; the decoder takes the attributes as one-hot blocks (one block per
    attribute, the code concatenated as constant maps to the input of every decoder layer), so attributes can
    be dialled at decode time."""

    family: ClassVar[str] = "fader"

    # Encoder: one stride-2 4x4 conv (+ BN + LeakyReLU 0.2) per entry; the decoder mirrors it.
    enc_channels: tuple[int, ...] = (32, 64, 128, 256, 256)
    # Latent discriminator: one conv on the latent map, then a hidden FC layer, dropout, one logit block per
    # attribute (the paper: C512 + FC 512, dropout 0.3).
    dis_hidden: int = 256
    dis_dropout: float = 0.3

    def validate(self) -> None:
        super().validate()
        n = type(self).__name__
        _check(len(self.enc_channels) >= 1 and all(int(c) >= 1 for c in self.enc_channels), n, "enc_channels",
               "needs at least one positive width")
        _check(self.image_size % (2 ** len(self.enc_channels)) == 0, n, "enc_channels",
               f"image_size {self.image_size} must be divisible by 2**{len(self.enc_channels)}")
        _check(self.dis_hidden >= 1, n, "dis_hidden", "must be >= 1")
        _check(0.0 <= self.dis_dropout < 1.0, n, "dis_dropout", "must be in [0, 1)")


@dataclass
class IcGANConfig(_AttributeEditConfig):
    """IcGAN (Perarnau et al., "Invertible Conditional GANs for image editing", 2016): a conditional DCGAN
    G(z, y) / D(x, y), plus two independent encoders E_z (image -> z) and E_y (image -> attributes) that invert
    it (the paper's best "IND" configuration).  y enters G at its input (concatenated to z) and D at its
    first layer (as constant maps), the placements the paper found best."""

    family: ClassVar[str] = "icgan"

    z_dim: int = 64
    # Generator: 4x4 start, one 2x upsampling (transposed conv + BN + ReLU) per entry after the first.
    g_channels: tuple[int, ...] = (256, 128, 64, 32)
    # Discriminator and both encoders: one stride-2 4x4 conv per entry.
    d_channels: tuple[int, ...] = (32, 64, 128, 256)
    e_channels: tuple[int, ...] = (32, 64, 128, 256)

    def validate(self) -> None:
        super().validate()
        n = type(self).__name__
        _check(self.z_dim >= 1, n, "z_dim", "must be >= 1")
        _check(self.image_size == 4 * 2 ** len(self.g_channels), n, "g_channels",
               f"{len(self.g_channels)} upsamplings from 4x4 give {4 * 2 ** len(self.g_channels)} px, "
               f"not image_size {self.image_size}")
        for name in ("g_channels", "d_channels", "e_channels"):
            widths = getattr(self, name)
            _check(len(widths) >= 1 and all(int(c) >= 1 for c in widths), n, name, "needs positive widths")
        for name in ("d_channels", "e_channels"):
            k = len(getattr(self, name))
            _check(self.image_size % (2 ** k) == 0, n, name, f"image_size {self.image_size} must be divisible "
                   f"by 2**{k}")


_FAMILIES: dict[str, type[ModelConfig]] = {
    c.family: c for c in (PGPGConfig, PixelDTGANConfig, CycleGANConfig, StyleGANConfig, FaderConfig, IcGANConfig)
}


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Build the right config class from a dict carrying a ``family`` key."""
    family = data.get("family") if isinstance(data, dict) else None
    if family not in _FAMILIES:
        raise ConfigError(f"unknown or missing model family {family!r}; expected one of {sorted(_FAMILIES)}")
    return _FAMILIES[family].from_dict(data)


# ---------------------------------------------------------------------------------------------- presets
def _presets() -> dict[str, ModelConfig]:
    return {
        # ---- thesis configurations
        "pgpg_thesis": PGPGConfig(),
        "pixeldtgan_thesis": PixelDTGANConfig(),
        "cyclegan_thesis": CycleGANConfig(),
        "stylegan_thesis": StyleGANConfig(),
        # ---- standard pose-transfer protocol (PATN split, 256x176, OpenPose-18 heatmaps).  The FC bottleneck
        # derives from the shapes: 64 x 16 x 11 = 11,264 features (the thesis' 16,384 at 128 px).
        "pgpg_256x176": PGPGConfig(image_size=(256, 176), pose_encoding="heatmaps", g1_bottleneck_channels=64),
        # ---- variants
        "cyclegan_unet": CycleGANConfig(generator="unet", g_down=4, g_base_channels=32),
        "stylegan2_128": StyleGANConfig(
            version=2, mapping_layers=8, mapping_activation="lrelu",
            channels=(512, 512, 512, 512, 256, 128), d_channels=(512, 512, 512, 512, 256, 128),
        ),
        # ---- small presets (tests, bundled demo weights)
        "pgpg_small": PGPGConfig(
            image_size=(64, 64), pose_encoding="heatmaps", g1_base_channels=16, g1_blocks=3,
            g1_bottleneck_channels=8, g2_base_channels=16, g2_blocks=3, d_base_channels=16, d_blocks=3,
        ),
        "pixeldtgan_small": PixelDTGANConfig(g_base_channels=16, bottleneck_dim=64, d_base_channels=16),
        "cyclegan_small": CycleGANConfig(g_base_channels=16, g_residual_blocks=3, d_base_channels=16, d_blocks=3),
        # DiscoGAN's encoder-decoder generators (BatchNorm, as DiscoGAN: InstanceNorm erases the per-image channel
        # means that carry a flat object's colour) down to a 4x4 code, and a 4-block PatchGAN (31 px receptive
        # field) without InstanceNorm, so that faint texture on a white field does not pass for an object.
        "discogan_small": CycleGANConfig(generator="discogan", g_base_channels=16, g_down=4, g_norm="batch",
                                         d_base_channels=32, d_blocks=4, d_negative_slope=0.2, d_norm="none"),
        # The same with a global style code driving the decoder (AdaIN): colour and pattern reach the other
        # domain's outline through a vector, not only through the 4x4 spatial code.
        "discogan_adain_small": CycleGANConfig(generator="discogan_adain", g_base_channels=16, g_down=4,
                                               g_norm="batch", g_style_dim=64, d_base_channels=32, d_blocks=4,
                                               d_negative_slope=0.2, d_norm="none"),
        # The same with an appearance-flow head: the translation copies the source object's surface (colour and
        # pattern) onto the outline it draws instead of redrawing it from the style code.
        "discogan_flow_small": CycleGANConfig(generator="discogan_flow", g_base_channels=16, g_down=4,
                                              g_norm="batch", g_style_dim=64, d_base_channels=32, d_blocks=4,
                                              d_negative_slope=0.2, d_norm="none"),
        "discogan_tile_small": CycleGANConfig(generator="discogan_tile", g_base_channels=16, g_down=4,
                                              g_norm="batch", g_style_dim=64, d_base_channels=32, d_blocks=4,
                                              d_negative_slope=0.2, d_norm="none"),
        # The same, drawing the outline of a target-domain exemplar's silhouette (8 stored per generator).
        "discogan_shape_small": CycleGANConfig(generator="discogan_tile", g_base_channels=16, g_down=4,
                                               g_norm="batch", g_style_dim=64, g_shape_bank=8, d_base_channels=32,
                                               d_blocks=4, d_negative_slope=0.2, d_norm="none"),
        "stylegan_small": StyleGANConfig(
            resolution=32, z_dim=64, w_dim=64, mapping_layers=4, mapping_activation="lrelu", const_channels=64,
            channels=(64, 64, 48, 32), d_channels=(128, 64, 32, 16),
        ),
        "stylegan2_small": StyleGANConfig(
            version=2, resolution=32, z_dim=64, w_dim=64, mapping_layers=4, mapping_activation="lrelu",
            const_channels=64, channels=(64, 64, 48, 32), d_channels=(128, 64, 32, 16),
        ),
        # ---- Fashion-MNIST presets: the small ones with 1-channel 32x32 images (28x28 padded to 32)
        "cyclegan_fmnist": CycleGANConfig(
            image_size=(32, 32), channels_a=1, channels_b=1, g_base_channels=16, g_residual_blocks=3,
            d_base_channels=16, d_blocks=3,
        ),
        "stylegan_fmnist": StyleGANConfig(
            resolution=32, image_channels=1, z_dim=64, w_dim=64, mapping_layers=4, mapping_activation="lrelu",
            const_channels=64, channels=(64, 64, 48, 32), d_channels=(128, 64, 32, 16),
        ),
        "stylegan2_fmnist": StyleGANConfig(
            version=2, resolution=32, image_channels=1, z_dim=64, w_dim=64, mapping_layers=4,
            mapping_activation="lrelu", const_channels=64, channels=(64, 64, 48, 32), d_channels=(128, 64, 32, 16),
        ),
        # ---- attribute editing (Fader Networks, IcGAN): synthetic product photos at 64 px (colour, pattern,
        # kind) and Fashion-MNIST at 32 px (class)
        "fader_synthetic": FaderConfig(),
        "fader_fmnist": FaderConfig(image_size=32, image_channels=1, attributes=_fmnist_edit_attributes(),
                                    enc_channels=(32, 64, 128, 256)),
        "icgan_synthetic": IcGANConfig(),
        "icgan_fmnist": IcGANConfig(image_size=32, image_channels=1, attributes=_fmnist_edit_attributes(),
                                    g_channels=(256, 128, 64), d_channels=(32, 64, 128), e_channels=(32, 64, 128)),
    }


PRESET_DESCRIPTIONS: dict[str, str] = {
    "pgpg_thesis": "PGPG pose transfer as in the thesis: 128x128, DensePose IUV pose (G1 276.0M, G2 117.5M, D 1.6M)",
    "pgpg_256x176": "PGPG at the standard DeepFashion pose-transfer protocol: 256x176, 18 keypoint heatmaps",
    "pgpg_small": "PGPG, small: 64x64, 18 keypoint heatmaps (tests, demo weights)",
    "pixeldtgan_thesis": "PixelDTGAN garment extraction as in the thesis: 64x64 (G 37.7M, D_R/D_A 6.2M)",
    "pixeldtgan_small": "PixelDTGAN, small: 64x64 (tests, demo weights)",
    "cyclegan_thesis": "DiscoGAN/CycleGAN shoes<->handbags as in the thesis: 64x64 (G 11.4M, D 1.6M each)",
    "cyclegan_unet": "CycleGAN with U-Net generators (bilinear upsampling), 64x64",
    "cyclegan_small": "CycleGAN, small: 64x64 (tests, demo weights)",
    "discogan_small": "DiscoGAN encoder-decoder generators, small: 64x64, shapes free to change (demo weights)",
    "discogan_adain_small": "DiscoGAN encoder-decoder generators with an AdaIN style code, small: 64x64",
    "discogan_flow_small": "DiscoGAN encoder-decoder generators with an AdaIN style code and appearance flow "
                           "(copies the source's surface), small: 64x64",
    "discogan_tile_small": "DiscoGAN encoder-decoder generators with an AdaIN style code and surface tiling "
                           "(copies the source's surface at its own scale into the drawn outline), small: 64x64",
    "discogan_shape_small": "surface-tiling DiscoGAN generators that draw the silhouette of a target-domain "
                            "exemplar (8 stored with the weights), small: 64x64",
    "stylegan_thesis": "StyleGAN v1 with progressive growing as in the thesis: 128x128 (G 58.5M, D 11.3M)",
    "stylegan2_128": "StyleGAN2 (modulated convs, skip G, residual D), 128x128",
    "stylegan_small": "StyleGAN v1, small: 32x32 (tests, demo weights)",
    "stylegan2_small": "StyleGAN2, small: 32x32 (tests, demo weights)",
    "cyclegan_fmnist": "CycleGAN, small, for Fashion-MNIST shoes (sandals, sneakers, boots) <-> bags: 1 channel, 32x32",
    "stylegan_fmnist": "StyleGAN v1, small, for Fashion-MNIST: 1 channel, 32x32",
    "stylegan2_fmnist": "StyleGAN2, small, for Fashion-MNIST: 1 channel, 32x32",
    "fader_synthetic": "Fader Network, small: synthetic product photos, 64x64, attributes colour/pattern/kind",
    "fader_fmnist": "Fader Network, small: Fashion-MNIST, 1 channel, 32x32, attribute class",
    "icgan_synthetic": "IcGAN (conditional DCGAN + encoders E_z, E_y), small: synthetic product photos, 64x64",
    "icgan_fmnist": "IcGAN, small: Fashion-MNIST, 1 channel, 32x32, attribute class",
}


def list_presets() -> list[str]:
    """Names of all registered presets."""
    return sorted(PRESET_DESCRIPTIONS)


def get_preset(name: str) -> ModelConfig:
    """A fresh config for preset ``name`` (a ``ConfigError`` lists the known names otherwise)."""
    presets = _presets()
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(sorted(presets))}")
    return presets[name]



@dataclass(frozen=True)
class ThesisCount:
    """A parameter count stated in the thesis tables, for one component of a thesis preset."""

    preset: str
    component: str  # role from ``build_models`` with an optional ".attribute" (e.g. "generator.g1")
    label: str
    stated_millions: float
    note: str = ""


#: The thesis' stated parameter counts (Tables 7, 10, 13, 16) and the erratum behind any difference.
THESIS_PARAMETER_COUNTS: tuple[ThesisCount, ...] = (
    ThesisCount("pgpg_thesis", "generator.g1", "PGPG G1", 276.0,
                "E4: listing (FC 2560, 8.4M) inconsistent; base 32, PJ 512->256, FC 16384 reproduces 276M"),
    ThesisCount("pgpg_thesis", "generator.g2", "PGPG G2", 117.4,
                "E5: bottleneck is 2048 x 2x2 (6 doublings of 32), not 1024 x 4x4"),
    ThesisCount("pgpg_thesis", "discriminator", "PGPG D", 1.6,
                "E6: base 16 (not UF 6->8), 4x4 output map of 32 px cells"),
    ThesisCount("pixeldtgan_thesis", "generator", "PixelDTGAN G", 37.7,
                "E12: 5x5 encoder kernels (3x3 would give 26.7M)"),
    ThesisCount("pixeldtgan_thesis", "disc_real", "PixelDTGAN D_R", 6.2,
                "E11: first conv counts as block 1 (128 -> 1024)"),
    ThesisCount("pixeldtgan_thesis", "disc_assoc", "PixelDTGAN D_A", 6.2,
                "E11: as D_R with 6 input channels"),
    ThesisCount("cyclegan_thesis", "gen_ab", "CycleGAN G_AB", 11.4,
                "E20: upsampling Cin -> Cin/2; 7x7 reflect stem/head (1x1 UF: 11.36M)"),
    ThesisCount("cyclegan_thesis", "gen_ba", "CycleGAN G_BA", 11.4, "E20 (as G_AB)"),
    ThesisCount("cyclegan_thesis", "disc_a", "CycleGAN D_A", 1.6, "E11: PJ 512->1 with base 64"),
    ThesisCount("cyclegan_thesis", "disc_b", "CycleGAN D_B", 1.6, "E11 (as D_A)"),
    ThesisCount("stylegan_thesis", "generator", "StyleGAN G", 58.5,
                "E17: G is 58.5M; channel formula not given, schedule 1024,1024,1024,512,128,64 gives +0.3%"),
    ThesisCount("stylegan_thesis", "discriminator", "StyleGAN D", 11.3,
                "E14: linear critic, FC size from the shapes; from-RGB and 4x4 epilogue reconstructed"),
)

#: The thesis' stated totals per model (millions of parameters).
THESIS_TOTALS: dict[str, float] = {
    "pgpg_thesis": 395.1,
    "pixeldtgan_thesis": 50.1,
    "cyclegan_thesis": 25.9,
    "stylegan_thesis": 69.8,
}


def thesis_tolerance(stated_millions: float) -> float:
    """Agreement allowed with a stated count: the thesis' rounding (0.05M) or 1%, whichever is larger."""
    return max(0.05, 0.01 * stated_millions)
