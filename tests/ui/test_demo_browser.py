"""A real browser (Chromium driven by Playwright) uses every tab of the demo as a person would.

Chromium comes from the distribution (``apt-get install chromium``; never ``playwright install``).  One
screenshot per tab is saved under the test's temporary folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashion_gans.ui.app import EXAMPLES_DIR

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def page(demo_server):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (scripts/test.sh does)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1300})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(demo_server.url)
        page.get_by_role("tab", name="Pose transfer").wait_for()
        yield page
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def _image_src(page, elem_id: str) -> str | None:
    img = page.locator(f"#{elem_id} img")
    return img.first.get_attribute("src") if img.count() else None


def _wait_for_new_image(page, elem_id: str, before: str | None = None) -> str:
    """Wait until the image output ``elem_id`` shows an image (a different one than ``before``)."""
    page.wait_for_function(
        """([id, before]) => {
            const img = document.querySelector('#' + id + ' img');
            return img && img.complete && img.naturalWidth > 0 && img.getAttribute('src') !== before;
        }""", arg=[elem_id, before], timeout=TIMEOUT_MS)
    return _image_src(page, elem_id)


def _click_example(page, elem_id: str, index: int = 0) -> None:
    page.locator(f"#{elem_id} button.gallery-item").nth(index).click()


def _choose(page, elem_id: str, value: str) -> None:
    """Pick ``value`` in the dropdown ``elem_id`` as a person does: open its list, click the option."""
    page.locator(f"#{elem_id} input").first.click()
    page.get_by_role("option", name=value, exact=True).click()


def _shot(page, shots: Path, name: str) -> Path:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _assert_not_blank(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 10_000, path
    arr = np.asarray(Image.open(path).convert("L"), np.float32)
    assert arr.std() > 10, f"{path} looks blank"


def _assert_output_not_blank(page, elem_id: str) -> None:
    """The output image itself (not only the page) has content."""
    box = page.locator(f"#{elem_id} img").first.screenshot()
    import io

    arr = np.asarray(Image.open(io.BytesIO(box)).convert("RGB"), np.float32)
    assert arr.std() > 3, f"#{elem_id} shows a blank image"


def test_pose_transfer_tab(page, shots):
    page.get_by_role("tab", name="Pose transfer").click()
    _click_example(page, "pose-examples", 1)
    page.locator("#pose-person img").first.wait_for()
    page.get_by_role("button", name="Transfer pose").click()
    _wait_for_new_image(page, "pose-result")
    _wait_for_new_image(page, "pose-coarse")
    _assert_output_not_blank(page, "pose-result")
    # Edit one joint: choose the tab, click on the skeleton; the target pose image changes.
    page.get_by_role("tab", name="Edit joints").click()
    before = _wait_for_new_image(page, "pose-editor")
    page.locator("#pose-editor img").first.click(position={"x": 30, "y": 40})
    _wait_for_new_image(page, "pose-editor", before)
    # Detect a pose in a reference photo: the photo comes back with keypoints drawn over it.
    page.get_by_role("tab", name="From a photo").click()
    _click_example(page, "pose-reference-examples", 0)
    page.locator("#pose-reference img").first.wait_for()
    page.get_by_role("button", name="Detect pose").click()
    _wait_for_new_image(page, "pose-detected")
    _assert_not_blank(_shot(page, shots, "pose-transfer"))


def test_garment_extraction_tab(page, shots):
    page.get_by_role("tab", name="Garment extraction").click()
    _click_example(page, "garment-examples", 0)
    page.locator("#garment-input img").first.wait_for()
    page.get_by_role("button", name="Extract garment").click()
    _wait_for_new_image(page, "garment-output")
    _assert_output_not_blank(page, "garment-output")
    _assert_not_blank(_shot(page, shots, "garment-extraction"))


def test_style_matching_tab_with_an_uploaded_file(page, shots):
    page.get_by_role("tab", name="Style matching").click()
    shoe = sorted((EXAMPLES_DIR / "shoes").glob("*.png"))[0]
    page.locator("#style-input input[type=file]").set_input_files(str(shoe))  # as the file chooser does
    page.locator("#style-input img").first.wait_for()
    page.get_by_role("button", name="Find the matching item").click()
    first = _wait_for_new_image(page, "style-output")
    _assert_output_not_blank(page, "style-output")
    _assert_not_blank(_shot(page, shots, "style-matching"))
    # Another stored outline (under Advanced): a handbag of another shape.
    before = page.locator("#style-output img").first.screenshot()
    page.locator("#style-advanced").get_by_text("Advanced").click()
    outline = page.locator("#style-outline input[type=number]")
    outline.fill("2")
    outline.press("Enter")
    page.get_by_role("button", name="Find the matching item").click()
    _wait_for_new_image(page, "style-output", first)
    after = page.locator("#style-output img").first.screenshot()
    import io

    a, b = (np.asarray(Image.open(io.BytesIO(x)).convert("L"), np.float32) for x in (before, after))
    assert a.shape == b.shape and np.abs(a - b).mean() > 5, "outline 2 drew the same item as outline 0"


def test_generation_tab(page, shots):
    page.get_by_role("tab", name="Generation").click()
    page.get_by_role("button", name="Random seed").click()
    page.get_by_role("button", name="Generate", exact=True).click()
    _wait_for_new_image(page, "generation-output")
    _assert_output_not_blank(page, "generation-output")
    page.get_by_role("button", name="Style mixing and interpolation").click()
    page.get_by_role("button", name="Mix styles").click()
    _wait_for_new_image(page, "generation-mix")
    page.get_by_role("button", name="Interpolate A → B").click()
    _wait_for_new_image(page, "generation-animation")
    _assert_not_blank(_shot(page, shots, "generation"))


def test_edit_attributes_tab(page, shots):
    page.get_by_role("tab", name="Edit attributes").click()
    # Another model relabels the attribute rows: a Fashion-MNIST model has one attribute, "class".
    _choose(page, "edit-model", "tiny-fader-fmnist")
    page.wait_for_function("""() => {
        const label = document.querySelector('#edit-value-0 [data-testid="block-info"]');
        const second = document.querySelector('#edit-attribute-1');
        return label && label.textContent.trim() === 'class' && (!second || second.offsetParent === null);
    }""", timeout=TIMEOUT_MS)
    _choose(page, "edit-model", "tiny-fader")
    page.wait_for_function("""() => {
        const label = document.querySelector('#edit-value-1 [data-testid="block-info"]');
        return label && label.textContent.trim() === 'pattern' && label.offsetParent !== null;
    }""", timeout=TIMEOUT_MS)
    _click_example(page, "edit-examples", 1)
    page.locator("#edit-input img").first.wait_for()
    _choose(page, "edit-value-0", "red")
    page.get_by_role("button", name="Edit", exact=True).click()
    _wait_for_new_image(page, "edit-output")
    _assert_output_not_blank(page, "edit-output")
    page.wait_for_function("""() => {
        const box = document.querySelector('#edit-read textarea');
        return box && box.value.startsWith('read as: ') && box.value.includes('→ edited to: red');
    }""", timeout=TIMEOUT_MS)
    _assert_not_blank(_shot(page, shots, "edit_attributes"))


def test_synthetic_world_tab(page, shots):
    page.get_by_role("tab", name="Synthetic world").click()
    before = _wait_for_new_image(page, "world-poses")
    page.get_by_label("Identity").fill("4")
    page.get_by_role("button", name="Render").click()
    _wait_for_new_image(page, "world-poses", before)
    _assert_not_blank(_shot(page, shots, "synthetic-world"))
    assert sorted(p.name for p in shots.glob("*.png")) == sorted(
        f"{n}.png" for n in ("pose-transfer", "garment-extraction", "style-matching", "generation", "edit_attributes",
                             "synthetic-world"))
