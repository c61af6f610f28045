"""A tiny synthetic world on disk (In-shop, LookBook, FISB, handbags/shoes at 64 px), rendered once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
    from fashion_gans.data.prepare import prepare_synthetic

    root = tmp_path_factory.mktemp("eval-world") / "data"
    prepare_synthetic(root, identities=16, size=(64, 64), fisb_count=48, fisb_size=32, bags=60, shoes=60,
                      bags_shoes_size=64, lookbook_products=40, lookbook_persons=3)
    return root


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """The evaluation networks are small: one thread is as fast as two and does not suffer on a busy machine."""
    yield
