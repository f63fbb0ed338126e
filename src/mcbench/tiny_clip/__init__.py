"""mcbench's own tiny CLIP: an open_clip model trained on the synthetic datasets and shipped with the package.

``load()`` returns it through open_clip itself: ``create_model_and_transforms("mcbench-tiny-clip",
pretrained=<shipped .safetensors>)`` after registering the model config directory with open_clip.
"""

from __future__ import annotations

from pathlib import Path

MODEL_NAME = "mcbench-tiny-clip"
_PACKAGE = Path(__file__).resolve().parents[1]
CONFIG_DIR = _PACKAGE / "model_configs"
WEIGHTS = _PACKAGE / "pretrained" / f"{MODEL_NAME}.safetensors"


def register() -> None:
    """Make ``mcbench-tiny-clip`` known to open_clip (idempotent)."""
    import open_clip

    if MODEL_NAME not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR)


def load(weights: str | Path = WEIGHTS, device: str = "cpu"):
    """(model in eval mode, its evaluation preprocess, its tokenizer) with the given weights."""
    import open_clip

    register()
    model, _, preprocess = open_clip.create_model_and_transforms(MODEL_NAME, pretrained=str(weights), device=device)
    return model.eval(), preprocess, open_clip.get_tokenizer(MODEL_NAME)
