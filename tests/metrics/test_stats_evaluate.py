"""Cached real statistics and the one-pass compute_metrics entry."""

from __future__ import annotations

import pytest
import torch

from fashion_gans.metrics import (
    PixelExtractor,
    StatsCacheError,
    StatsKey,
    compute_metrics,
    extract_features,
    fid_from_features,
    get_real_stats,
    kid_from_features,
    load_stats,
    precision_recall,
)
from fashion_gans.metrics.stats import stats_path


class CountingExtractor(PixelExtractor):
    """Pixels with a class head (mean intensity per 4x4 block as "logits"); counts forward calls."""

    num_classes = 16

    def __init__(self):
        super().__init__(size=4, channels=1)
        self.calls = 0

    def forward(self, images):
        self.calls += 1
        out = super().forward(images)
        out["logits"] = out["features"] * 5
        return out


def test_one_feature_pass_shared_by_all_metrics(fashion_mnist_images):
    real, fake = fashion_mnist_images[:300], fashion_mnist_images[300:600]
    ext = CountingExtractor()
    res = compute_metrics(fake, real, ext, metrics=("fid", "kid", "is", "pr", "ssim"), batch_size=100,
                          options={"kid": {"n_subsets": 5, "subset_size": 100}})
    assert ext.calls == 6  # 3 fake + 3 real batches, one pass each
    fr, ff = extract_features(ext, real).features, extract_features(ext, fake).features
    assert res["fid"] == pytest.approx(fid_from_features(fr, ff), rel=1e-9)
    assert res["kid_mean"] == pytest.approx(kid_from_features(fr, ff, n_subsets=5, subset_size=100)["kid_mean"])
    assert res["precision"] == precision_recall(fr, ff)["precision"]
    assert res["num_fake"] == res["num_real"] == 300
    assert -1 < res["ssim"] < 1 and res["is_mean"] >= 1
    # Float [-1, 1] input is quantised to the same uint8 images.
    signed = fake.float() / 127.5 - 1
    assert compute_metrics(signed, real, ext, metrics=("fid",))["fid"] == pytest.approx(res["fid"], rel=1e-9)
    with pytest.raises(ValueError, match="logits"):
        compute_metrics(fake, real, PixelExtractor(), metrics=("is",))


def test_cached_stats_same_fid_and_cache_hit(tmp_path, fashion_mnist_images):
    real, fake = fashion_mnist_images[:500], fashion_mnist_images[1000:1200]
    ext = CountingExtractor()
    key = StatsKey("fashion-mnist", "test", 28, ext.name, count=400)
    stats, hit = get_real_stats(key, real, ext, tmp_path, batch_size=100)
    assert not hit and ext.calls == 4 and stats.num_images == 400
    assert [p.name for p in tmp_path.iterdir()] == [stats_path(tmp_path, key).name]  # no temporary left

    def no_pass():
        raise AssertionError("the real set was read on a cache hit")

    ext.calls = 0
    cached, hit = get_real_stats(key, no_pass, ext, tmp_path)
    assert hit and ext.calls == 0
    fresh = compute_metrics(fake, real[:400], ext, metrics=("fid", "pr"))
    from_cache = compute_metrics(fake, cached, ext, metrics=("fid", "pr"))
    assert from_cache["fid"] == pytest.approx(fresh["fid"], rel=1e-9)
    assert from_cache["precision"] == pytest.approx(fresh["precision"])
    assert from_cache["num_real"] == 400
    assert compute_metrics(fake, stats_path(tmp_path, key), ext, metrics=("fid",))["fid"] == pytest.approx(
        fresh["fid"], rel=1e-9)


def test_corrupt_or_mismatched_cache_is_a_clear_error(tmp_path, fashion_mnist_images):
    ext = CountingExtractor()
    key = StatsKey("fashion-mnist", "test", 28, ext.name, count=50)
    get_real_stats(key, fashion_mnist_images[:50], ext, tmp_path)
    path = stats_path(tmp_path, key)
    other = StatsKey("fashion-mnist", "train", 28, ext.name, count=50)
    with pytest.raises(StatsCacheError, match="made for"):
        load_stats(path, expected_key=other)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(StatsCacheError, match=str(path.name)):
        get_real_stats(key, fashion_mnist_images[:50], ext, tmp_path)
    pixel_stats, _ = get_real_stats(StatsKey("fashion-mnist", "test", 28, "pixels8", 50),
                                    fashion_mnist_images[:50], PixelExtractor(), None)
    with pytest.raises(ValueError, match="extractor"):
        compute_metrics(fashion_mnist_images[:50], pixel_stats, ext, metrics=("fid",))
