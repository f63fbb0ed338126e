import numpy as np
import pytest
import torch

from mcbench.contracts import METHODS
from mcbench.methods.multi_map import alignment_loss, constraint_loss
from mcbench.prompts import word_text_embeddings


def test_alignment_loss_hand_case():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[0.0, 3.0], [0.0, 1.0]])
    assert alignment_loss(x, t).item() == pytest.approx(0.5)  # (1 - 0 + 1 - 1) / 2


def test_constraint_loss_is_the_mean_squared_error_over_rows_and_dims():
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    c = torch.tensor([[0.0, 0.0], [3.0, 2.0]])
    assert constraint_loss(w, c).item() == pytest.approx((1 + 4 + 0 + 4) / 4)


def test_proxies_start_at_the_zero_shot_reference_word(make_task):
    task, _ = make_task("synth_fruit", "color", n=40)
    result = METHODS.get("multi_map").from_params({"epochs": 0, "readout": "word"}).fit(task)
    text = word_text_embeddings(task.encoder, task.prompt, task.reference_words)
    z = (task.features.embeddings @ text.T).argmax(1)
    expected = task.encoder.token_embeddings(list(task.reference_words))[z]
    np.testing.assert_allclose(result.representation, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_without_weight_decay_the_batch_size_does_not_change_the_proxies(make_task):
    """Every term is per image and Adagrad normalises each row's step: batch 20 and batch 40 agree."""
    task, _ = make_task("synth_cards", "suits", n=40)
    fit = lambda b: METHODS.get("multi_map").from_params({"epochs": 3, "batch_size": b, "readout": "word"}).fit(task)  # noqa: E731
    a, b = fit(20).representation, fit(40).representation
    assert np.abs(a - b).max() < 1e-3 * np.abs(a).max()  # float32 summation order only


def test_training_moves_the_proxies_and_lowers_the_alignment_loss(make_task):
    task, _ = make_task("synth_shapes", "shape", n=40)
    result = METHODS.get("multi_map").from_params({"epochs": 4, "batch_size": 20}).fit(task)
    assert result.history[-1]["align"] < result.history[0]["align"]
    assert result.history[-1]["reference"] > 0


@pytest.mark.parametrize("readout", ["prompt", "word", "word_eod", "image", "combined"])
def test_every_readout_of_the_official_evaluation_is_available(make_task, readout):
    task, _ = make_task("synth_fruit", "species", n=40)
    result = METHODS.get("multi_map").from_params({"epochs": 1, "readout": readout}).fit(task)
    assert len(result.partitions[0]) == task.n and result.representation_name


def test_official_switches_run_on_the_tiny_clip(make_task):
    task, _ = make_task("synth_fruit", "color", n=40, order="sorted")
    params = {"batching": "blocks", "decay_scope": "table", "proxy_space": "official", "weight_decay": 5e-5,
              "official_text_encoder": True, "zero_shot_template": "bare", "epochs": 2}
    result = METHODS.get("multi_map").from_params(params).fit(task)
    assert np.isfinite(result.representation).all()


def test_bad_switch_value_is_named(make_task):
    task, _ = make_task("synth_fruit", "color", n=40)
    with pytest.raises(ValueError, match="method.batching='random' is not valid"):
        METHODS.get("multi_map").from_params({"batching": "random"}).fit(task)


def test_prefix_cache_gives_the_same_prompt_embeddings_and_partition(make_task):
    """The switch only changes how t*_i is computed (prefix keys/values cached), not what it is."""
    task, _ = make_task("synth_cards", "number", n=80)
    fit = lambda cache: METHODS.get("multi_map").from_params(  # noqa: E731
        {"epochs": 3, "batch_size": 40, "prefix_cache": cache}).fit(task)
    cached, full = fit(True), fit(False)
    np.testing.assert_allclose(cached.proxies, full.proxies, atol=1e-5)
    assert all((p == q).all() for p, q in zip(cached.partitions, full.partitions))
    assert cached.history[-1]["loss"] == pytest.approx(full.history[-1]["loss"], abs=1e-5)


def test_prefix_cache_needs_the_truncated_prompt(make_task):
    task, _ = make_task("synth_fruit", "color", n=40)
    with pytest.raises(ValueError, match="method.prefix_cache=true .* method.truncate=false"):
        METHODS.get("multi_map").from_params({"truncate": False}).fit(task)
    result = METHODS.get("multi_map").from_params({"truncate": False, "prefix_cache": False, "epochs": 1}).fit(task)
    assert np.isfinite(result.representation).all()


def test_rows_record_the_effective_alpha_beta_and_lr(tmp_path, cache_dir, tiny_clip):
    """The row's ``effective_hparams`` holds what the fit trained with; ``hparams`` keeps the configured values."""
    import json

    from hydra import compose, initialize_config_module

    import mcbench.paths  # noqa: F401
    from mcbench.runner import run

    with initialize_config_module("mcbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=[
            "method=multi_map", "dataset=synth_fruit", "dataset.n=40", "aspect=color", "method.epochs=1",
            "logger=none", "progress=false", f"paths.cache_dir={cache_dir}", f"results_file={tmp_path}/runs.csv"])
    (row,) = run(cfg)
    hp, eff = json.loads(row["hparams"]), json.loads(row["effective_hparams"])
    assert hp["constraint_scale"] == "space" and "alpha_scale" not in hp
    assert eff["alpha"] == pytest.approx(hp["alpha"] * eff["alpha_scale"]) and eff["alpha_scale"] > 100
    assert eff["beta"] == pytest.approx(hp["beta"] * eff["beta_scale"]) and eff["lr"] < hp["lr"]
    assert eff["scale_basis"] == "measured"  # the tiny CLIP's text and joint widths match
