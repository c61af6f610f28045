"""The Gradio web demo: one tab per tool, plus a browser for the synthetic fashion world.

The four tool tabs describe each tool and its data until trained weights are bundled; the
"Synthetic world" tab renders the project's procedural data set live.
"""

from __future__ import annotations

import numpy as np

TOOLS = (
    (
        "Pose transfer",
        "A person image and a target pose (18 OpenPose keypoints) → the same person in the target pose. "
        "Model: PGPG (two-stage U-Net generator + conditional PatchGAN), trained on DeepFashion In-shop "
        "or on the synthetic world's pose pairs.",
    ),
    (
        "Garment extraction",
        "A photo of a dressed person → a product photo of the worn top on white. Model: PixelDTGAN "
        "(encoder/decoder generator with real/fake and associated/unassociated discriminators), trained on "
        "LookBook + In-shop flat items or the synthetic world.",
    ),
    (
        "Style matching",
        "A shoe → a handbag of matching style, and back. Model: DiscoGAN/CycleGAN (two ResNet generators, two "
        "PatchGANs), trained on the iGAN handbags/Zappos shoes files, Fashion-MNIST shoes ↔ bags, or the "
        "synthetic world's shared styles.",
    ),
    (
        "Generation",
        "Seeds → new full-body fashion photos, with truncation, style mixing and interpolation. Models: StyleGAN "
        "and StyleGAN2, trained on DeepFashion Fashion Synthesis, Fashion-MNIST or the synthetic world.",
    ),
)


def _grid(images: list[np.ndarray], columns: int) -> np.ndarray:
    """Tile equally sized uint8 HWC images into one image with a 2 px white gutter."""
    h, w = images[0].shape[:2]
    rows = (len(images) + columns - 1) // columns
    canvas = np.full((rows * (h + 2) + 2, columns * (w + 2) + 2, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        canvas[2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + c * (w + 2) : 2 + c * (w + 2) + w] = img
    return canvas


def render_world_preview(seed: int, identity: int, size: int = 128) -> tuple[np.ndarray, np.ndarray, str]:
    """Render one identity of the synthetic world in every pose, its product shot, and a shoe/bag pair."""
    from fashion_gans.data.pose import draw_skeleton
    from fashion_gans.data.synthetic import ACCESSORY_SHAPES, POSE_NAMES, SyntheticWorld

    if size < 32 or size > 512:
        raise ValueError(f"size must be between 32 and 512 px, got {size}")
    world = SyntheticWorld(seed=int(seed))
    person = world.person(int(identity))
    renders = [world.render_person(person, world.pose(int(identity), k), (size, size)) for k in range(len(POSE_NAMES))]
    people = [r.image for r in renders]
    skeletons = [draw_skeleton(r.keypoints, r.image) for r in renders]
    style = world.accessory_style(int(identity))
    extras = [
        world.render_flat(person.top, (size, size)),
        world.render_person(person, world.pose(int(identity), 0), (size, size), background="scene").image,
        world.render_shoe(style, ACCESSORY_SHAPES["shoe"][0], (size, size)),
        world.render_bag(style, ACCESSORY_SHAPES["bag"][0], (size, size)),
    ]
    top = _grid(people + skeletons, columns=len(people))
    bottom = _grid(extras, columns=len(extras))
    attrs = {"person": person.attributes(), "accessory_style": style.attributes()}
    import json

    return top, bottom, json.dumps(attrs, indent=2)


def build_demo():
    """Build the Gradio Blocks app (nothing is loaded until a request arrives)."""
    import gradio as gr

    with gr.Blocks(title="fashion-gans") as demo:
        gr.Markdown(
            "# fashion-gans\nA fashion image multi-tool of four GANs: pose transfer, garment extraction, "
            "shoes ↔ handbags style matching and fashion photo generation."
        )
        with gr.Tabs():
            for name, text in TOOLS:
                with gr.Tab(name):
                    gr.Markdown(f"### {name}\n{text}\n\n*Bundled weights for this tool are not trained yet.*")
            with gr.Tab("Synthetic world"):
                gr.Markdown(
                    "The procedural fashion world the models train and are scored on: every attribute "
                    "(colour, pattern, garment, pose, style) is known, so results can be checked."
                )
                with gr.Row():
                    seed = gr.Number(value=0, precision=0, label="World seed")
                    identity = gr.Number(value=0, precision=0, label="Identity")
                    size = gr.Slider(32, 256, value=128, step=16, label="Size (px)")
                    button = gr.Button("Render", variant="primary")
                poses = gr.Image(label="Poses and keypoints", format="png", interactive=False)
                extras = gr.Image(label="Product shot · LookBook-style scene · shoe · handbag", format="png", interactive=False)
                attributes = gr.Code(label="Recorded attributes", language="json")
                button.click(
                    render_world_preview,
                    inputs=[seed, identity, size],
                    outputs=[poses, extras, attributes],
                    api_name="render_world",
                )
                demo.load(render_world_preview, inputs=[seed, identity, size], outputs=[poses, extras, attributes])
    return demo
