"""Pure ``nn.Module`` model families (no I/O, no training).

* :mod:`.pgpg`: pose transfer (PGPG / PoseGAN: G1 + G2 generator, conditional PatchGAN)
* :mod:`.pixeldtgan`: garment extraction (generator, D_R, D_A)
* :mod:`.cyclegan`: shoes <-> handbags style matching (ResNet or U-Net generators, PatchGANs)
* :mod:`.stylegan`: generation (StyleGAN v1 with progressive growing, StyleGAN2)

Configurations are typed dataclasses (:mod:`.config`); :func:`get_preset` / :func:`list_presets` give the
thesis and small presets, :func:`build_models` builds every network of a configuration.  Every network
saves and loads with ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` (:mod:`.hub`).
"""

from __future__ import annotations

from torch import nn

from .blocks import count_parameters
from .config import (
    ConfigError,
    CycleGANConfig,
    ModelConfig,
    PGPGConfig,
    PixelDTGANConfig,
    StyleGANConfig,
    FaderConfig,
    IcGANConfig,
    config_from_dict,
    get_preset,
    list_presets,
)
from .cyclegan import CycleGANDiscriminator, CycleGANGenerator
from .hub import HubModel, ModelFileError
from .pgpg import PGPGDiscriminator, PGPGGenerator, PGPGOutput
from .pixeldtgan import PixelDTAssociationDiscriminator, PixelDTGenerator, PixelDTRealDiscriminator
from .stylegan import (
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    StyleGANDiscriminator,
    StyleGANGenerator,
    fade_in_alpha,
)
# attribute editing: Fader Networks (.fader) -- imports go here
from .fader import FaderNetwork, LatentDiscriminator
# attribute editing: IcGAN (.icgan) -- imports go here
from .icgan import IcGANDiscriminator, IcGANEncoderY, IcGANEncoderZ, IcGANGenerator

__all__ = [
    "ConfigError", "ModelConfig", "PGPGConfig", "PixelDTGANConfig", "CycleGANConfig", "StyleGANConfig",
    "config_from_dict", "get_preset", "list_presets", "build_models", "count_parameters",
    "HubModel", "ModelFileError",
    "PGPGGenerator", "PGPGDiscriminator", "PGPGOutput",
    "PixelDTGenerator", "PixelDTRealDiscriminator", "PixelDTAssociationDiscriminator",
    "CycleGANGenerator", "CycleGANDiscriminator",
    "StyleGANGenerator", "StyleGANDiscriminator", "StyleGAN2Generator", "StyleGAN2Discriminator",
    "fade_in_alpha", "MODEL_CLASSES",
    "FaderConfig", "FaderNetwork", "LatentDiscriminator",
    "IcGANConfig", "IcGANGenerator", "IcGANDiscriminator", "IcGANEncoderZ", "IcGANEncoderY",
]

#: Every Hub-loadable class by name (the ``model_class`` stored in config.json).
MODEL_CLASSES: dict[str, type[HubModel]] = {
    cls.__name__: cls
    for cls in (
        PGPGGenerator, PGPGDiscriminator, PixelDTGenerator, PixelDTRealDiscriminator,
        PixelDTAssociationDiscriminator, CycleGANGenerator, CycleGANDiscriminator, StyleGANGenerator,
        StyleGANDiscriminator, StyleGAN2Generator, StyleGAN2Discriminator,
        # attribute editing: Fader Networks classes go here
        FaderNetwork, LatentDiscriminator,
        # attribute editing: IcGAN classes go here
        IcGANGenerator, IcGANDiscriminator, IcGANEncoderZ, IcGANEncoderY,
    )
}


def build_models(config: ModelConfig | str) -> dict[str, nn.Module]:
    """Every network of a configuration (or preset name), by role.

    pgpg: generator, discriminator; pixeldtgan: generator, disc_real, disc_assoc;
    cyclegan: gen_ab, gen_ba, disc_a, disc_b; stylegan: generator, discriminator.
    """
    if isinstance(config, str):
        config = get_preset(config)
    if isinstance(config, PGPGConfig):
        return {"generator": PGPGGenerator(config), "discriminator": PGPGDiscriminator(config)}
    if isinstance(config, PixelDTGANConfig):
        return {"generator": PixelDTGenerator(config), "disc_real": PixelDTRealDiscriminator(config),
                "disc_assoc": PixelDTAssociationDiscriminator(config)}
    if isinstance(config, CycleGANConfig):
        return {"gen_ab": CycleGANGenerator(config, "ab"), "gen_ba": CycleGANGenerator(config, "ba"),
                "disc_a": CycleGANDiscriminator(config, "a"), "disc_b": CycleGANDiscriminator(config, "b")}
    if isinstance(config, StyleGANConfig):
        if config.version == 1:
            return {"generator": StyleGANGenerator(config), "discriminator": StyleGANDiscriminator(config)}
        return {"generator": StyleGAN2Generator(config), "discriminator": StyleGAN2Discriminator(config)}
    # attribute editing: Fader Networks -> {"fader": FaderNetwork, "latent_disc": LatentDiscriminator}
    if isinstance(config, FaderConfig):
        return {"fader": FaderNetwork(config), "latent_disc": LatentDiscriminator(config)}
    # attribute editing: IcGAN -> {"generator", "discriminator", "encoder_z", "encoder_y"}
    if isinstance(config, IcGANConfig):
        return {"generator": IcGANGenerator(config), "discriminator": IcGANDiscriminator(config),
                "encoder_z": IcGANEncoderZ(config), "encoder_y": IcGANEncoderY(config)}
    raise ConfigError(f"cannot build models for {type(config).__name__}")
