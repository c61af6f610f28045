"""Gradio user interface: :func:`~fashion_gans.ui.app.build_demo` builds the web demo."""
