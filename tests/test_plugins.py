"""A method from another package: built and installed for real (pip, into a temporary folder on PYTHONPATH), found
through the ``mcbench.methods`` entry point, its config found without ``hydra.searchpath``, run by ``mcbench``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "mcbench-toy-plugin"
version = "0.0.1"

[project.entry-points."mcbench.methods"]
toy_plugin = "mcbench_toy.method"

[tool.setuptools]
packages = ["mcbench_toy"]
"""

METHOD = '''
"""A toy method: k-means on the image embeddings times a scale, with a made-up loss per epoch."""
from dataclasses import dataclass

from mcbench.contracts import ClusteringTask, FitResult, ProxyMethod, register_method


@dataclass
class ToyConfig:
    scale: float = 1.0
    epochs: int = 2


@register_method("toy_plugin")
class ToyPlugin(ProxyMethod):
    Config = ToyConfig
    implementation = "plugin"

    def fit(self, task: ClusteringTask) -> FitResult:
        history = []
        for epoch in range(self.config.epochs):
            history.append({"loss": 1.0 / (epoch + 1)})
            task.log_epoch(history[-1])
        return FitResult.from_representation(task, task.features.embeddings * self.config.scale, "scaled image",
                                             history=history)
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    """The plugin package built and installed with pip (no dependencies: mcbench is already there)."""
    root = tmp_path_factory.mktemp("plugin")
    src = root / "src"
    (src / "mcbench_toy").mkdir(parents=True)
    (src / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (src / "mcbench_toy" / "__init__.py").write_text("")
    (src / "mcbench_toy" / "method.py").write_text(METHOD)
    site = root / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(site), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(site.glob("mcbench_toy_plugin-*.dist-info/entry_points.txt"))
    return site


def mcbench(cwd, plugin_path, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")]),
               MCBENCH_CACHE=str(cwd / "cache"), WANDB_MODE="offline")
    return subprocess.run([sys.executable, "-m", "mcbench.commands.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_an_installed_plugin_runs_in_a_sweep_without_flags(tmp_path, plugin_path):
    proc = mcbench(tmp_path, plugin_path, "-m", "method=toy_plugin,kmeans_image", "dataset=synth_fruit",
                   "dataset.n=40", "aspect=color", "encoder=tiny_clip_random", "logger=none", "protocol.n_restarts=2",
                   "progress=false", f"results_file={tmp_path}/runs.csv")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = pd.read_csv(tmp_path / "runs.csv")
    assert sorted(rows["method"]) == ["kmeans_image", "toy_plugin"]
    row = rows[rows["method"] == "toy_plugin"].iloc[0]
    assert row["implementation"] == "plugin" and row["epochs_run"] == 2
    assert json.loads(row["hparams"]) == {"scale": 1.0, "epochs": 2}
    assert "toy_plugin" in proc.stdout.split("[mcbench] sweep results")[1]  # in the sweep's final table


def test_the_help_lists_the_plugin_and_its_settings_are_checked(tmp_path, plugin_path):
    proc = mcbench(tmp_path, plugin_path, "--help")
    assert proc.returncode == 0 and "toy_plugin (plugin)" in proc.stdout
    proc = mcbench(tmp_path, plugin_path, "--cfg", "job", "method=toy_plugin", "method.scale=2.5")
    assert proc.returncode == 0 and "name: toy_plugin" in proc.stdout and "scale: 2.5" in proc.stdout
    proc = mcbench(tmp_path, plugin_path, "method=toy_plugin", "method.scal=2")
    assert proc.returncode == 2
    assert "method.scal is not a setting of method 'toy_plugin'. Valid settings: epochs, scale" in proc.stderr
