"""Pluggable feature extractors, registered with :func:`fashion_gans.metrics.features.register_extractor`.

========================  ==========================================================  ======  ======
name                      network                                                     D       logits
========================  ==========================================================  ======  ======
``inception-v3-fid``      standard FID Inception-v3 (TF 2015-12-05 weights, local file) 2048    1008
``inception-v3-thesis``   torchvision ImageNet Inception-v3 + the thesis' preprocessing 2048    1000
``fmnist-classifier``     shipped Fashion-MNIST 10-class CNN                            128     10
``synthetic-attributes``  shipped synthetic-world attribute CNN (multi-head)            192     13
========================  ==========================================================  ======  ======

``synthetic-pose`` (:mod:`.keypoints`, :func:`load_keypoint_detector`) is not a feature extractor: it is the
shipped 18-keypoint detector for the synthetic mannequins behind the pose-transfer keypoint error.

Keyword arguments of :func:`~fashion_gans.metrics.features.get_extractor` go to the factory:
``weights=PATH`` (and ``download=True``) for the Inceptions, ``path=DIR`` for the domain networks.
"""

from fashion_gans.metrics.features import register_extractor

from .domain import ASSETS_DIR, DomainExtractor, DomainNetConfig, load_domain_extractor
from .inception import FIDInceptionV3, ThesisInceptionV3, resize_bilinear_tf1
from .keypoints import KeypointDetector, keypoint_error, load_keypoint_detector

__all__ = ["ASSETS_DIR", "DomainExtractor", "DomainNetConfig", "FIDInceptionV3", "ThesisInceptionV3",
           "load_domain_extractor", "resize_bilinear_tf1", "KeypointDetector", "keypoint_error",
           "load_keypoint_detector"]


def _domain(name: str):
    def factory(path=None) -> DomainExtractor:
        return load_domain_extractor(name, path)
    return factory


register_extractor("inception-v3-fid", FIDInceptionV3, overwrite=True)
register_extractor("inception-v3-thesis", ThesisInceptionV3, overwrite=True)
register_extractor("fmnist-classifier", _domain("fmnist-classifier"), overwrite=True)
register_extractor("synthetic-attributes", _domain("synthetic-attributes"), overwrite=True)
