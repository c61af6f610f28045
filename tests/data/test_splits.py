"""Product splits: an exact, deterministic share of the products, whatever order they come in."""

from __future__ import annotations

import pytest

from fashion_gans.data.splits import choose_test_ids, product_split


@pytest.mark.parametrize("n, fraction", [(2, 0.1), (12, 0.1), (10, 0.3), (57, 0.2), (5, 0.0), (6, 1.0)])
def test_exact_share_order_independent(n, fraction):
    ids = [f"id_{i:08d}" for i in range(n)]
    test = choose_test_ids(ids, fraction, salt="s")
    expected = round(fraction * n)
    if 0 < fraction < 1:
        expected = min(n - 1, max(1, expected))
    assert len(test) == expected and test <= set(ids)
    assert choose_test_ids(reversed(ids), fraction, salt="s") == test
    split = product_split(ids, fraction, salt="s")
    assert {i for i, s in split.items() if s == "test"} == test and set(split) == set(ids)


def test_min_per_split_and_salt():
    ids = [f"p{i}" for i in range(12)]
    assert len(choose_test_ids(ids, 0.1, min_per_split=2)) == 2
    assert len(choose_test_ids(ids[:3], 0.1, min_per_split=2)) == 0  # too few for two per split: round(0.3)
    draws = {choose_test_ids(ids, 0.25, salt=str(s)) for s in range(8)}
    assert len(draws) > 1  # the salt changes which products are chosen
    with pytest.raises(ValueError):
        choose_test_ids(ids, 1.5)
