"""fashion-gans: a fashion image multi-tool of four GANs.

Pose transfer (PGPG), garment extraction (PixelDTGAN), shoes <-> handbags style matching
(DiscoGAN/CycleGAN) and fashion photo generation (StyleGAN), with a procedural synthetic
fashion world and loaders for the real datasets.
"""

__version__ = "0.1.0"
