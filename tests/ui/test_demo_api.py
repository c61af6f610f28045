"""The demo over HTTP with ``gradio_client``: every named endpoint on example and hostile inputs.

Every request answers with an image or a clear error, and the server keeps serving afterwards.
"""

from __future__ import annotations

import json
import socket
import urllib.request

import numpy as np
import pytest
from PIL import Image

from fashion_gans.models.sources import list_bundled
from fashion_gans.ui.app import EXAMPLES_DIR, DemoBackend, build_demo, launch_demo
from fashion_gans.ui.registry import ModelChoiceError, ModelRegistry

ENDPOINTS = {"/gallery_pose", "/detect_pose", "/set_joint", "/transfer_pose", "/extract_garment", "/match_style",
             "/generate", "/style_mix", "/interpolate", "/render_world", "/edit_attributes"}
PERSON = EXAMPLES_DIR / "persons" / "person_0_front.png"
SHOE = sorted((EXAMPLES_DIR / "shoes").glob("*.png"))[0]
REFERENCE = EXAMPLES_DIR / "references" / "reference_walking.png"
FLAT = EXAMPLES_DIR / "flats" / "flat_navy_stripes_shirt.png"


@pytest.fixture(scope="module")
def client(demo_server):
    from gradio_client import Client

    return Client(demo_server.url, verbose=False)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, str]:
    """Files a visitor might send: damaged, not images, extreme sizes and unusual modes."""
    d = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.integers(0, 256, 2000, np.uint8).tobytes())
    (d / "document.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n")
    Image.new("RGB", (1, 1), (200, 30, 30)).save(d / "one_pixel.png")
    ramp = np.linspace(0, 255, 6000, dtype=np.uint8)
    Image.fromarray(np.broadcast_to(ramp[None, :, None], (6000, 6000, 3)).copy()).save(d / "huge.png")
    rgba = np.zeros((64, 48, 4), np.uint8)
    rgba[16:48, 12:36] = (20, 90, 200, 255)
    Image.fromarray(rgba, "RGBA").save(d / "rgba.png")
    Image.fromarray((np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)).save(d / "grey16.png")
    Image.open(PERSON).convert("P", palette=Image.ADAPTIVE, colors=16).save(d / "palette.png")
    return {p.stem: str(p) for p in d.iterdir()}


def _open(path: str) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _gallery_pose(client, name="walking") -> str:
    keypoints, _ = client.predict(name, api_name="/gallery_pose")
    return keypoints


# ---------------------------------------------------------------------------------------------- the page
def test_page_serves_every_tab_and_named_endpoint(demo_server, client):
    with urllib.request.urlopen(demo_server.url, timeout=10) as resp:
        page = resp.read().decode("utf-8", "replace")
    for tab in ("Pose transfer", "Garment extraction", "Style matching", "Generation", "Edit attributes",
                "Synthetic world"):
        assert tab in page, f"tab {tab!r} missing from the served page"
    api = client.view_api(print_info=False, return_format="dict")
    assert ENDPOINTS <= set(api["named_endpoints"]), sorted(api["named_endpoints"])


def test_render_world_endpoint_returns_images_and_attributes(client):
    poses_path, extras_path, attributes = client.predict(3, 5, 64, api_name="/render_world")
    poses, extras = _open(poses_path), _open(extras_path)
    assert poses.shape[1] > poses.shape[0] and poses.std() > 10 and extras.std() > 10
    assert '"identity": 5' in attributes.replace("'", '"')
    again, _, _ = client.predict(3, 5, 64, api_name="/render_world")
    np.testing.assert_array_equal(_open(again), poses)  # deterministic from the seed


# ---------------------------------------------------------------------------------------------- examples
def test_pose_endpoints_on_examples(client):
    from gradio_client import handle_file

    keypoints, skeleton = client.predict("arms_raised", api_name="/gallery_pose")
    pose = np.asarray(json.loads(keypoints))
    assert pose.shape == (18, 2) and _open(skeleton).shape == (256, 256, 3)
    moved, moved_skeleton = client.predict(keypoints, "r_wrist", 0.25, 0.75, api_name="/set_joint")
    assert json.loads(moved)[4] == [0.25, 0.75] and json.loads(moved)[0] == pose[0].tolist()
    assert not np.array_equal(_open(moved_skeleton), _open(skeleton))

    detected, overlay, detected_skeleton = client.predict(handle_file(str(REFERENCE)), True, api_name="/detect_pose")
    assert (np.asarray(json.loads(detected)) >= 0).all(axis=1).sum() >= 12
    assert _open(overlay).shape[0] >= 256

    result, target, coarse = client.predict(handle_file(str(PERSON)), detected, "tiny-pose", "pad",
                                            api_name="/transfer_pose")
    shapes = {_open(p).shape for p in (result, target, coarse)}
    assert shapes == {(256, 256, 3)}  # 64 px model output shown at 4x
    assert _open(target).max() > 0  # the target skeleton is drawn


def test_garment_style_and_generation_endpoints_on_examples(client):
    from gradio_client import handle_file

    product = client.predict(handle_file(str(PERSON)), "tiny-garment", "pad", api_name="/extract_garment")
    assert _open(product).shape == (256, 256, 3)
    for direction, model in (("shoe → handbag", "tiny-style"), ("handbag → shoe", "tiny-style-gray")):
        matched = client.predict(handle_file(str(SHOE)), direction, model, "pad", "auto", 0, api_name="/match_style")
        assert _open(matched).shape == (256, 256, 3)
    grid = client.predict(5, 4, 0.7, "tiny-generation", api_name="/generate")
    assert _open(grid).shape[1] > 3 * _open(grid).shape[0]  # four images in a row
    mixed = client.predict(5, 6, 2, 0.7, "tiny-generation", api_name="/style_mix")
    assert _open(mixed).shape[0] == _open(mixed).shape[1]  # 2 x 2
    animation = client.predict(5, 6, 4, 0.7, "tiny-generation", "gif", api_name="/interpolate")
    with Image.open(animation) as anim:
        assert anim.format == "GIF" and anim.n_frames == 6


def _edit(client, image, model: str, edits: dict | str, amounts: dict | str = "{}"):
    """``/edit_attributes`` -> (edited image array, "read as" text, info dict)."""
    from gradio_client import handle_file

    as_text = [v if isinstance(v, str) else json.dumps(v) for v in (edits, amounts)]
    path, text, info = client.predict(handle_file(str(image)), model, *as_text, api_name="/edit_attributes")
    return _open(path), text, json.loads(info)


@pytest.mark.parametrize("model", ["tiny-fader", "tiny-icgan", "tiny-fader-fmnist"])
def test_edit_attributes_changes_the_image_only_when_a_value_changes(client, model):
    image = FLAT if model != "tiny-fader-fmnist" else sorted((EXAMPLES_DIR / "fmnist_clothes").glob("*.png"))[0]
    kept, text, info = _edit(client, image, model, {})
    read = info["read"]
    assert kept.shape == (256, 256, 3) and text == "read as: " + ", ".join(read.values())
    attr = next(iter(read))  # colour (synthetic) or class (Fashion-MNIST)
    assert info["target"] == read and info["amounts"] == {}
    with Image.open(image) as img:
        shown = np.asarray(img.convert("RGB").resize((256, 256), Image.NEAREST), np.float32)
    # Another value of the first attribute changes the result (against the input and the reconstruction), and a
    # smaller amount gives yet another image.
    other = next(v for v in {"colour": ("red", "blue"), "class": ("Bag", "Coat")}[attr] if v != read[attr])
    edited, text, info = _edit(client, image, model, {attr: other})
    assert info["target"] == {**read, attr: other} and info["amounts"] == {attr: 1.0}
    assert text == f"read as: {', '.join(read.values())} → edited to: {', '.join(info['target'].values())}"
    assert np.abs(edited.astype(np.float32) - kept).mean() > 1.0
    assert np.abs(edited.astype(np.float32) - shown).mean() > 0.5
    half, _, info = _edit(client, image, model, {attr: other}, {attr: 0.5})
    assert info["amounts"] == {attr: 0.5}
    assert not np.array_equal(half, kept) and not np.array_equal(half, edited)
    # Keeping everything, the read value, "keep" or an amount of 0: exactly the reconstruction.
    for edits, amounts in (({attr: read[attr]}, {}), ({attr: "keep"}, {}), ({attr: other}, {attr: 0})):
        again, _, info = _edit(client, image, model, edits, amounts)
        np.testing.assert_array_equal(again, kept, err_msg=f"{model}: {edits} {amounts}")


def test_hostile_edits_get_a_clear_error_naming_the_problem(client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    flat = handle_file(str(FLAT))
    cases = {
        ('{"sleeve": "long"}', "{}"): r"unknown attribute 'sleeve'; this model's attributes are \['colour', 'pattern'",
        ('{"colour": "mauve"}', "{}"): r"unknown value 'mauve' of attribute 'colour'; valid values: \['red'",
        ('{"colour": 3}', "{}"): r"edits: the value of 'colour' must be a string",
        ('{"colour": "red"', "{}"): r"edits: not valid JSON",
        ('["red"]', "{}"): r"edits: expected a JSON object attribute -> value, got list",
        ('{"colour": "red"}', '{"colour": 2}'): r"amount of 'colour' must be in \[0, 1.5\], got 2.0",
        ('{"colour": "red"}', '{"colour": "far"}'): r"amount of 'colour': not a number",
        ('{"colour": "red"}', '{"size": 1}'): r"amount for unknown attribute 'size'",
    }
    for (edits, amounts), message in cases.items():
        with pytest.raises(AppError, match=message):
            client.predict(flat, "tiny-fader", edits, amounts, api_name="/edit_attributes")
    with pytest.raises(AppError, match="'tiny-garment' is a garment extraction model, not an attribute editing model"):
        client.predict(flat, "tiny-garment", "{}", "{}", api_name="/edit_attributes")
    with pytest.raises(AppError, match="unknown value 'Bag' of attribute 'colour'"):  # Fashion-MNIST value, RGB model
        client.predict(flat, "tiny-fader", '{"colour": "Bag"}', "{}", api_name="/edit_attributes")
    with pytest.raises(AppError, match="image: upload a product photo"):
        client.predict(None, "tiny-fader", "{}", "{}", api_name="/edit_attributes")
    assert _edit(client, FLAT, "tiny-fader", {"colour": "red"})[0].std() > 0  # still serving


def test_edit_tab_controls_follow_the_model(demo_server, tmp_path):
    from fashion_gans.ui.app import KEEP, MAX_ATTRIBUTE_ROWS

    backend = DemoBackend(ModelRegistry(demo_server.models, include_bundled=False), device="cpu", temp_dir=tmp_path)
    status, *rows = backend.edit_controls("tiny-fader")
    values, amounts, columns = (rows[k * MAX_ATTRIBUTE_ROWS:(k + 1) * MAX_ATTRIBUTE_ROWS] for k in range(3))
    assert [v["label"] for v in values[:3]] == ["colour", "pattern", "kind"] and "kind (9 values)" in status
    assert values[0]["choices"][0] == KEEP and "navy" in values[0]["choices"] and values[0]["value"] == KEEP
    assert [c["visible"] for c in columns] == [True, True, True, False] and amounts[3]["visible"] is False
    status, *rows = backend.edit_controls("tiny-fader-fmnist")  # one attribute: one row
    assert rows[0]["label"] == "class" and "Ankle boot" in rows[0]["choices"]
    assert [v["visible"] for v in rows[:MAX_ATTRIBUTE_ROWS]] == [True, False, False, False]
    status, *rows = backend.edit_controls("tiny-pose")
    assert "cannot be used" in status and not any(v["visible"] for v in rows)
    empty = DemoBackend(ModelRegistry({}, include_bundled=False), device="cpu", temp_dir=tmp_path)
    status, *rows = empty.edit_controls("")
    assert "No attribute editing model is available" in status and not any(v["visible"] for v in rows)
    # The page's rows become the endpoint's JSON: the edited rows only, amounts other than 1.
    rows = ["red", KEEP, "dress", KEEP, 0.5, 1.0, 1.0, 1.0]
    *_, edits, amounts_json = backend.edit_rows(str(FLAT), "tiny-fader", *rows)
    assert json.loads(edits) == {"colour": "red", "kind": "dress"} and json.loads(amounts_json) == {"colour": 0.5}


def test_concurrent_visitors_with_the_same_result_all_get_it_whole(demo_server):
    """Many clients asking for the same result at once (the same example photo) each download a complete image:
    the server never rewrites a result file that it is sending to another client."""
    import threading

    from gradio_client import Client, handle_file

    clients = [Client(demo_server.url, verbose=False) for _ in range(6)]
    results: list[np.ndarray] = []
    errors: list[str] = []
    lock = threading.Lock()

    def visit(c) -> None:
        for _ in range(4):
            try:
                out = _open(c.predict(handle_file(str(PERSON)), "tiny-garment", "pad", api_name="/extract_garment"))
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                results.append(out)

    threads = [threading.Thread(target=visit, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    assert not errors, errors[:3]
    assert len(results) == 24 and all(np.array_equal(r, results[0]) for r in results)


# ---------------------------------------------------------------------------------------------- hostile input
IMAGE_ENDPOINTS = {
    "/transfer_pose": lambda f, kp: (f, kp, "tiny-pose", "pad"),
    "/extract_garment": lambda f, kp: (f, "tiny-garment", "pad"),
    "/match_style": lambda f, kp: (f, "shoe → handbag", "tiny-style-gray", "crop", "auto", 0),
    "/edit_attributes": lambda f, kp: (f, "tiny-fader", '{"colour": "red", "pattern": "dots"}', '{"colour": 0.8}'),
}


@pytest.mark.parametrize("endpoint", sorted(IMAGE_ENDPOINTS))
def test_hostile_images_get_an_image_or_a_clear_error(client, hostile, endpoint):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    keypoints = _gallery_pose(client)
    for name in ("corrupt", "document"):
        with pytest.raises(AppError, match="cannot be read: it is (a PDF document|not an image file)"):
            client.predict(*IMAGE_ENDPOINTS[endpoint](handle_file(hostile[name]), keypoints), api_name=endpoint)
    for name in ("one_pixel", "huge", "rgba", "grey16", "palette"):
        out = client.predict(*IMAGE_ENDPOINTS[endpoint](handle_file(hostile[name]), keypoints), api_name=endpoint)
        first = out[0] if isinstance(out, (tuple, list)) else out
        assert _open(first).shape == (256, 256, 3), (endpoint, name)
    # Still serving normally afterwards.
    out = client.predict(*IMAGE_ENDPOINTS[endpoint](handle_file(str(PERSON)), keypoints), api_name=endpoint)
    assert _open(out[0] if isinstance(out, (tuple, list)) else out).std() > 0


def test_hostile_poses_and_parameters(client, hostile):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    person = handle_file(str(PERSON))
    with pytest.raises(AppError, match="the pose is empty"):
        client.predict(person, "[]", "tiny-pose", "pad", api_name="/transfer_pose")
    with pytest.raises(AppError, match="not valid JSON"):
        client.predict(person, "[[0.5, 0.5", "tiny-pose", "pad", api_name="/transfer_pose")
    lonely = json.dumps([[0.5, 0.2]] + [[-1, -1]] * 17)
    with pytest.raises(AppError, match="too few joints"):
        client.predict(person, lonely, "tiny-pose", "pad", api_name="/transfer_pose")
    with pytest.raises(AppError, match="too few joints"):  # BlazePose finds no person in a shoe
        client.predict(handle_file(str(SHOE)), True, api_name="/detect_pose")
    with pytest.raises(AppError, match="cannot be read"):
        client.predict(handle_file(hostile["document"]), True, api_name="/detect_pose")
    with pytest.raises(AppError, match="tail is not in the list of choices"):
        client.predict(_gallery_pose(client), "tail", 0.5, 0.5, api_name="/set_joint")
    with pytest.raises(AppError, match="1000 is greater than maximum value 32"):
        client.predict(0, 1000, 0.7, "tiny-generation", api_name="/generate")
    with pytest.raises(AppError, match="-5 is less than minimum"):
        client.predict(-5, 2, 0.7, "tiny-generation", api_name="/generate")
    with pytest.raises(AppError, match=r"crossover layer: must be in 1..7 for this model \(8 style layers\)"):
        client.predict(1, 2, 12, 0.7, "tiny-generation", api_name="/style_mix")
    with pytest.raises(AppError, match="'exe' .* is not in the list of choices"):
        client.predict(1, 2, 4, 0.7, "tiny-generation", "exe", api_name="/interpolate")
    assert _open(client.predict(1, 1, 1.0, "tiny-generation", api_name="/generate")).std() >= 0


def test_model_box_accepts_only_offered_models_and_hub_ids(client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    person = handle_file(str(PERSON))
    for typed in ("/etc", "../../..", "/tmp/../etc/passwd", "~/.ssh"):
        with pytest.raises(AppError, match="local folders are accepted only inside"):
            client.predict(person, typed, "pad", api_name="/extract_garment")
    with pytest.raises(AppError, match="is a pose transfer model, not a garment extraction model"):
        client.predict(person, "tiny-pose", "pad", api_name="/extract_garment")
    with pytest.raises(AppError, match="cannot be found or downloaded.*offline"):
        client.predict(person, "someone/not-a-cached-model", "pad", api_name="/extract_garment")


def _raw_call(url: str, endpoint: str, data: list) -> str:
    """Call an endpoint over plain HTTP (no client-side upload) and return the event stream's text."""
    req = urllib.request.Request(f"{url}gradio_api/call/{endpoint}", data=json.dumps({"data": data}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        event_id = json.loads(resp.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{endpoint}/{event_id}", timeout=60) as resp:
        return resp.read().decode()


def test_files_outside_the_upload_folder_and_oversized_uploads_are_refused(demo_server, client, tmp_path):
    from gradio_client import handle_file

    # A request naming a server-side file directly (not uploaded) is refused before any handler runs.
    for path in ("/etc/hostname", str(PERSON)):
        answer = _raw_call(demo_server.url, "extract_garment",
                           [{"path": path, "meta": {"_type": "gradio.FileData"}}, "tiny-garment", "pad"])
        assert "event: error" in answer and "not uploaded by a user" in answer, answer
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(11 * 1024 * 1024))
    with pytest.raises(ValueError, match="exceeds the maximum file size of 10485760 bytes"):
        client.predict(handle_file(str(big)), "tiny-garment", "pad", api_name="/extract_garment")
    assert _open(client.predict(handle_file(str(PERSON)), "tiny-garment", "pad", api_name="/extract_garment")).any()


# ---------------------------------------------------------------------------------------------- in-process
def test_a_tab_without_any_model_explains_itself(tmp_path):
    backend = DemoBackend(ModelRegistry({}, include_bundled=False), temp_dir=tmp_path)
    assert "No pose transfer model is available" in backend.status("pose")
    with pytest.raises(ModelChoiceError, match="No garment extraction model is available"):
        backend.pipeline("garment", "")
    from fashion_gans.pipelines import base

    base.clear_model_cache()
    demo = build_demo(include_bundled=False, temp_dir=tmp_path)  # builds without any model ...
    assert demo.backend.registry.names("generation") == []
    full = build_demo(temp_dir=tmp_path)  # ... and with every bundled model, none of which is loaded yet
    assert full.backend.registry.entries.keys() >= set(list_bundled()) and base._CACHE == {}
    # The launch settings: a queue with a concurrency limit and a bounded length, and the upload limit.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    launch_demo(demo, port=port, prevent_thread_lock=True, concurrency=2, queue_size=7, max_file_size="3mb")
    try:
        assert demo._queue.default_concurrency_limit == 2 and demo._queue.max_size == 7
        assert demo.max_file_size == 3 * 1024 * 1024 and demo.share is False
    finally:
        demo.close()
