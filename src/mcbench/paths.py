"""Where mcbench's shipped files are, and the OmegaConf resolver that lets configs name them."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf


def datasets_dir() -> Path:
    """The top-level ``datasets/`` folder (installed as ``mcbench.dataset_files``): cards, words, data root."""
    import mcbench.dataset_files as files

    return Path(list(files.__path__)[0])


if not OmegaConf.has_resolver("mcbench_datasets_dir"):
    OmegaConf.register_new_resolver("mcbench_datasets_dir", lambda: str(datasets_dir()))
