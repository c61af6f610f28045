"""Deterministic dataset splits that need no stored list.

* :func:`hash_split` - per index (datasets without identities: FISB, handbags/shoes): a SplitMix64 hash
  of (index, salt) against the test fraction.
* :func:`product_split` - per product (In-shop, LookBook): an exact share of the products, chosen by a
  seeded hash of each product id, so that a small dataset always has a test split.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable

import numpy as np

__all__ = ["SPLITS", "hash_split", "choose_test_ids", "product_split"]

SPLITS = ("train", "test", "all")


def hash_split(n: int, split: str, test_fraction: float = 0.1, *, salt: str = "") -> np.ndarray:
    """Boolean mask over ``range(n)``: which indices belong to ``split`` ("train", "test" or "all").

    A SplitMix64 hash of (index, salt) decides, so the split is deterministic, needs no stored list, is
    stable when images are appended, and "train" and "test" are disjoint and cover every index.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    if split == "all":
        return np.ones(n, dtype=bool)
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) + np.uint64(zlib.crc32(salt.encode()) << 20) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    is_test = u < test_fraction
    return is_test if split == "test" else ~is_test


def _rank(product_id: str, salt: str) -> bytes:
    return hashlib.blake2b(f"{salt}\0{product_id}".encode(), digest_size=8).digest()


def choose_test_ids(ids: Iterable[str], test_fraction: float, *, salt: str = "",
                    min_per_split: int = 1) -> frozenset[str]:
    """The test products: exactly ``round(test_fraction * n)`` of the ``n`` distinct ids.

    The ids are ordered by a hash of (salt, id) and the first ones taken, so the choice is deterministic and
    independent of the order the ids come in.  With ``n >= 2 * min_per_split`` and ``0 < test_fraction < 1``
    each split gets at least ``min_per_split`` products.
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    unique = sorted(set(ids))
    n = len(unique)
    n_test = int(round(test_fraction * n))
    if min_per_split < 1:
        raise ValueError(f"min_per_split must be >= 1, got {min_per_split}")
    if n >= 2 * min_per_split and 0.0 < test_fraction < 1.0:
        n_test = min(n - min_per_split, max(min_per_split, n_test))
    ranked = sorted(unique, key=lambda i: (_rank(i, salt), i))
    return frozenset(ranked[:n_test])


def product_split(ids: Iterable[str], test_fraction: float, *, salt: str = "",
                  min_per_split: int = 1) -> dict[str, str]:
    """Product id -> "train" or "test", with the exact test share of :func:`choose_test_ids`."""
    unique = set(ids)
    test = choose_test_ids(unique, test_fraction, salt=salt, min_per_split=min_per_split)
    return {i: ("test" if i in test else "train") for i in sorted(unique)}
