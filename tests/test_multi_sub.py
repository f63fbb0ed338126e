"""Multi-Sub: the subspace property, what is trained, the losses on hand-computed cases, determinism."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from mcbench.contracts import METHODS
from mcbench.methods.multi_sub import MultiSub, MultiSubConfig, alignment_loss, clustering_loss

FAST = {"rounds": 2, "phase1_epochs": 2, "phase2_epochs": 2}


def fit(task, **overrides):
    return MultiSub(MultiSubConfig(**{**FAST, **overrides})).fit(task)


def test_alignment_loss_is_mean_one_minus_cosine():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[3.0, 0.0], [1.0, 1.0]])  # cosines 1 and 1/sqrt(2)
    assert alignment_loss(x, t).item() == pytest.approx((0.0 + 1.0 - 1.0 / math.sqrt(2.0)) / 2.0, abs=1e-6)


def test_clustering_loss_on_a_hand_computed_case():
    v = torch.tensor([[0.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    labels = torch.tensor([0, 0, 1])
    # same-label pair (0,1): distance 2; different-label pairs: distances 3 and sqrt(13); margin 4
    inter = ((4.0 - 3.0) + (4.0 - math.sqrt(13.0))) / 2.0
    loss, intra, inter_got = clustering_loss(v, labels, lam=0.5, margin=4.0, intra_distance="squared")
    assert intra.item() == pytest.approx(4.0)
    assert inter_got.item() == pytest.approx(inter, abs=1e-6)
    assert loss.item() == pytest.approx(0.5 * 4.0 + 0.5 * inter, abs=1e-6)
    _, intra_e, _ = clustering_loss(v, labels, lam=0.5, margin=4.0, intra_distance="euclidean")
    assert intra_e.item() == pytest.approx(2.0, abs=1e-5)
    loss_l, _, _ = clustering_loss(v, labels, lam=0.25, margin=4.0)
    assert loss_l.item() == pytest.approx(0.25 * 4.0 + 0.75 * inter, abs=1e-6)


def test_clustering_loss_without_pairs_is_finite_and_zero():
    v = torch.randn(4, 3, requires_grad=True)
    loss, intra, inter = clustering_loss(v, torch.zeros(4, dtype=torch.long))  # one pseudo-class: no inter pairs
    assert inter.item() == 0.0 and intra.item() > 0.0
    loss.backward()
    assert torch.isfinite(v.grad).all()
    _, intra1, _ = clustering_loss(v.detach(), torch.arange(4))  # all singletons: no intra pairs
    assert intra1.item() == 0.0


def test_proxies_are_convex_combinations_of_the_reference_token_embeddings(make_task):
    task, _ = make_task("synth_cards", "suits", n=60)
    result = fit(task, readout="word")
    a = torch.as_tensor(result.info["weights"])
    assert a.shape == (task.n, len(task.reference_words))
    assert (a >= 0).all()
    assert torch.allclose(a.sum(1), torch.ones(task.n), atol=1e-5)
    z = task.encoder.token_embeddings(list(task.reference_words))
    w = torch.as_tensor(result.representation, dtype=torch.float32)
    assert torch.allclose(w, a @ z, atol=1e-5)


def test_encoder_stays_frozen_and_only_the_projection_copy_is_trained(make_task):
    task, _ = make_task("synth_cards", "suits", n=60)
    before = {k: v.clone() for k, v in task.encoder.model.state_dict().items()}
    weight0, bias0 = task.encoder.projection_parameters()
    result = fit(task)
    after = task.encoder.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    weight1, _ = task.encoder.projection_parameters()
    assert torch.equal(weight0, weight1)
    assert result.info["projection_change"] > 0
    assert not np.allclose(result.info["projection_weight"], weight0.numpy())


def test_same_seed_gives_identical_results(make_task):
    task, _ = make_task("synth_shapes", "color", n=60)
    r1, r2 = fit(task), fit(task)
    assert np.array_equal(r1.representation, r2.representation)
    assert all(np.array_equal(p, q) for p, q in zip(r1.partitions, r2.partitions))
    assert r1.history == r2.history


def test_reordering_the_images_reorders_the_result(make_task):
    task, _ = make_task("synth_shapes", "color", n=60)
    perm = torch.randperm(task.n, generator=torch.Generator().manual_seed(1))
    f = task.features
    shuffled = dataclasses.replace(task, features=type(f)(f.embeddings[perm], f.pre_projection[perm]))
    r1, r2 = fit(task), fit(shuffled)
    assert np.allclose(r2.representation, r1.representation[perm.numpy()], atol=1e-4)
    assert np.allclose(r2.info["weights"], r1.info["weights"][perm.numpy()], atol=1e-4)


def test_another_seed_gives_another_trajectory(make_task):
    task, _ = make_task("synth_shapes", "color", n=60)
    other = dataclasses.replace(task, seed=task.seed + 1)  # same images in the same order
    r1, r2 = fit(task), fit(other)
    assert not np.allclose(r1.representation, r2.representation)


def test_history_records_both_phases_and_proxies_live_in_joint_space(make_task):
    task, _ = make_task("synth_fruit", "color", n=60)
    result = fit(task)
    phases = [h["phase"] for h in result.history]
    assert phases == ([1.0] * 2 + [2.0] * 2) * 2
    assert {"align"} <= set(result.history[0]) and {"cluster", "intra", "inter"} <= set(result.history[2])
    assert result.proxies.shape == (task.n, task.encoder.embed_dim)
    assert np.allclose(np.linalg.norm(result.proxies, axis=1), 1.0, atol=1e-5)
    assert result.representation_name == "concat(w, x)"


def test_minibatches_and_every_switch_run(make_task):
    task, _ = make_task("synth_cards", "suits", n=60)
    for over in ({"batch_size": 16}, {"optimizer": "adagrad"}, {"pseudo_labels": "kmeans_w"},
                 {"pseudo_labels": "kmeans_v"}, {"init": "mean"}, {"init": "zeroshot"},
                 {"intra_distance": "euclidean", "concat_norm": False}, {"official_text_encoder": True},
                 {"readout": "prompt"}, {"readout": "image"}, {"temperature": 0.1},
                 {"prefix_cache": False}):
        result = fit(task, rounds=1, phase1_epochs=1, phase2_epochs=1, **over)
        assert len(result.labels) == task.n and np.isfinite(result.representation).all()


def test_an_unknown_switch_value_is_one_clear_error(make_task):
    task, _ = make_task("synth_cards", "suits", n=60)
    with pytest.raises(ValueError, match="pseudo_labels"):
        fit(task, pseudo_labels="truth")


def test_method_is_registered_as_a_paper_reimplementation():
    cls = METHODS.get("multi_sub")
    assert cls is MultiSub and cls.implementation == "reimplementation (paper)"


def test_official_overrides_compose_into_a_valid_config():
    from hydra import compose, initialize_config_module

    from mcbench.runner import prepare

    with initialize_config_module("mcbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=["method=multi_sub", *MultiSub.official_overrides])
    config = prepare(cfg).method.config
    assert (config.optimizer, config.init, config.official_text_encoder, config.lr_projection) == (
        "adagrad", "official", True, 1e-5)
