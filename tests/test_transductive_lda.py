"""transductive_lda (methods/transductive_lda.py, docs/transductive_lda.md): the equations, the label-free
contract (image order only permutes the output), a constructed case where the images' structure corrects
zero-shot errors, every switch in the result row, cluster names, and the sanity checks."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_module

import mcbench.paths  # noqa: F401  (config resolver)
from mcbench.commands import sanity
from mcbench.contracts import METHODS, ClusteringTask, ImageFeatures
from mcbench.metrics import score_partitions
from mcbench.prompts import word_text_embeddings
from mcbench.runner import run_with_results

from mcbench.methods.transductive_lda import (  # noqa: E402
    TransductiveLDA, e_step, free_energy, gaussian_log_likelihood, keep_words, knn_affinity, m_step, sinkhorn,
)

WORDS = ("red", "yellow", "green", "blue")
DISTRACTORS = ("purple", "orange")  # reference words no image has (an LLM's superset)
PROMPT = "Fruit with a color of *"


def constructed_task(encoder, words=WORDS, per_class=20, shift=1.0, noise=0.04, seed=0):
    """Four tight classes whose centres are their words' text embeddings plus a shared shift toward the first word
    (a domain bias zero-shot follows: it gives about a third of the images to "red") plus an image-only offset
    per class, orthogonal to the words. Labels: class of each image, in task order."""
    text = word_text_embeddings(encoder, PROMPT, WORDS).double()
    g = torch.Generator().manual_seed(seed)
    k, d = text.shape
    basis, _ = torch.linalg.qr(text.T)
    offset = torch.randn(k, d, generator=g, dtype=torch.float64)
    offset = offset - (offset @ basis) @ basis.T
    offset = offset / offset.norm(dim=1, keepdim=True)
    centres = text + shift * text[0] + 0.3 * offset
    y = np.arange(k).repeat(per_class)
    y = y[torch.randperm(len(y), generator=g).numpy()]
    x = centres[y] + noise * torch.randn(len(y), d, generator=g, dtype=torch.float64)
    x = (x / x.norm(dim=1, keepdim=True)).float()
    task = ClusteringTask(dataset="constructed", aspect="color", concept="color", k=k, prompt=PROMPT,
                          reference_words=tuple(words), features=ImageFeatures(x, x), encoder=encoder, seed=0)
    return task, y


def ring_task(encoder, per_class=40, noise=0.04, seed=0):
    """Each class c drawn with an echo of the next class: centre t_c + t_(c+1), so zero-shot splits every class
    about half and half between its word and the next word, while the classes stay apart in the word span."""
    text = word_text_embeddings(encoder, PROMPT, WORDS).double()
    g = torch.Generator().manual_seed(seed)
    k, d = text.shape
    y = np.arange(k).repeat(per_class)
    y = y[torch.randperm(len(y), generator=g).numpy()]
    centres = text + text.roll(-1, dims=0)
    x = centres[y] + noise * torch.randn(len(y), d, generator=g, dtype=torch.float64)
    x = (x / x.norm(dim=1, keepdim=True)).float()
    task = ClusteringTask(dataset="ring", aspect="color", concept="color", k=k, prompt=PROMPT,
                          reference_words=WORDS, features=ImageFeatures(x, x), encoder=encoder, seed=0)
    return task, y


def permuted(task: ClusteringTask, perm: np.ndarray) -> ClusteringTask:
    f = task.features
    return dataclasses.replace(task, features=ImageFeatures(f.embeddings[perm], f.pre_projection[perm]))


# ------------------------------------------------------------------------------------------ equations
def test_m_step_with_hard_assignments_gives_class_means_and_the_pooled_shrunk_covariance():
    rng = np.random.default_rng(0)
    f = torch.as_tensor(rng.normal(size=(30, 3)))
    y = np.arange(30) % 3
    z = torch.nn.functional.one_hot(torch.as_tensor(y), 3).double()
    mu, cov = m_step(f, z, shrinkage=0.25)
    means = np.stack([f.numpy()[y == c].mean(0) for c in range(3)])
    centred = f.numpy() - means[y]
    pooled = centred.T @ centred / 30
    expected = 0.75 * pooled + 0.25 * np.trace(pooled) / 3 * np.eye(3)
    assert np.allclose(mu.numpy(), means) and np.allclose(cov.numpy(), expected)


def test_log_likelihood_is_minus_half_the_mahalanobis_distance():
    rng = np.random.default_rng(1)
    f, mu = torch.as_tensor(rng.normal(size=(5, 3))), torch.as_tensor(rng.normal(size=(2, 3)))
    a = torch.as_tensor(rng.normal(size=(3, 3)))
    cov = a @ a.T + torch.eye(3, dtype=torch.float64)
    inv = np.linalg.inv(cov.numpy())
    expected = np.array([[-0.5 * (fi - mc) @ inv @ (fi - mc) for mc in mu.numpy()] for fi in f.numpy()])
    assert np.allclose(gaussian_log_likelihood(f, mu, cov).numpy(), expected)


def test_sinkhorn_balances_the_columns_and_keeps_rows_distributions():
    p = torch.softmax(torch.as_tensor(np.random.default_rng(2).normal(size=(60, 3)) + [2.0, 0, 0]), dim=1)
    q = sinkhorn(p, rounds=50)
    assert torch.allclose(q.sum(1), torch.ones(60, dtype=q.dtype))
    assert torch.allclose(q.sum(0), torch.full((3,), 20.0, dtype=q.dtype), atol=1e-3)


def test_kept_words_are_the_k_of_largest_mass_in_list_order_and_ties_keep_the_list_order():
    p = torch.tensor([[0.1, 0.5, 0.1, 0.3], [0.1, 0.4, 0.1, 0.4]], dtype=torch.float64)
    assert keep_words(p, 2, "mass").tolist() == [1, 3]
    assert keep_words(torch.full((3, 4), 0.25), 2, "mass").tolist() == [0, 1]
    assert keep_words(p, 2, "all").tolist() == [0, 1, 2, 3]


def test_knn_graph_is_symmetric_nonnegative_and_has_no_self_loops():
    x = torch.nn.functional.normalize(torch.as_tensor(np.random.default_rng(3).normal(size=(20, 4))), dim=1)
    w = knn_affinity(x, 3)
    assert torch.equal(w, w.T) and (w >= 0).all() and (w.diagonal() == 0).all()
    assert ((w > 0).sum(1) >= 1).all()


def test_free_energy_at_the_e_step_is_the_tempered_log_likelihood():
    rng = np.random.default_rng(6)
    log_prior = torch.log_softmax(torch.as_tensor(rng.normal(size=(12, 3))), dim=1)
    loglik = -torch.as_tensor(rng.random(size=(12, 3)))
    cov = torch.diag(torch.tensor([0.5, 2.0], dtype=torch.float64))
    z = e_step(log_prior, loglik, 2.0, None, None, 0.0, 0)
    expected = torch.logsumexp(log_prior + 2.0 * loglik, dim=1).sum() - 0.5 * 2.0 * 12 * torch.logdet(cov)
    assert free_energy(log_prior, loglik, cov, z, 2.0, None, 0.0) == pytest.approx(float(expected))
    # any other z scores lower (the E-step maximises F over z)
    assert free_energy(log_prior, loglik, cov, torch.full_like(z, 1 / 3), 2.0, None, 0.0) < float(expected)


# ------------------------------------------------------------------------------------------ contract
def test_permuting_the_images_permutes_the_partition_and_the_posteriors(tiny_clip, make_task):
    for task in (constructed_task(tiny_clip)[0], make_task("synth_cards", "number", n=120)[0]):
        perm = np.random.default_rng(4).permutation(task.n)
        a, b = TransductiveLDA().fit(task), TransductiveLDA().fit(permuted(task, perm))
        assert np.array_equal(b.labels, a.labels[perm])  # the same word for every image, not only up to relabelling
        assert np.allclose(b.representation, a.representation[perm], atol=1e-5)
        assert a.info["kept_words"] == b.info["kept_words"]


def test_class_sorted_and_shuffled_input_give_the_same_partition(make_task):
    """No label order is visible: a class-sorted task and a shuffled one give the same word per image."""
    shuffled, _ = make_task("synth_fruit", "species", n=80, seed=0)
    sorted_task, _ = make_task("synth_fruit", "species", n=80, seed=0, order="sorted")
    a, b = TransductiveLDA().fit(shuffled), TransductiveLDA().fit(sorted_task)
    # map both back to one order through the image embeddings themselves (the tasks hold the same images)
    key = lambda t: np.lexsort(t.features.embeddings.numpy().T)  # noqa: E731
    assert np.array_equal(a.labels[key(shuffled)], b.labels[key(sorted_task)])


def test_images_structure_corrects_the_zero_shot_errors(tiny_clip):
    task, y = constructed_task(tiny_clip)
    zero_shot = METHODS.get("zeroshot_gpt")().fit(task).labels
    ours = TransductiveLDA().fit(task)
    assert (zero_shot == y).mean() < 0.8  # the shared shift sends many images to "red"
    assert (ours.labels == y).mean() > 0.95  # clusters are the words: accuracy without any matching
    assert score_partitions(y, [ours.labels])["nmi"] > score_partitions(y, [zero_shot])["nmi"] + 0.3
    assert ours.info["changed_from_zero_shot"] > 0


def test_restarts_leave_the_zero_shot_trap_chosen_by_the_objective_alone(tiny_clip):
    """Every class half-read as the next word: EM from the zero-shot start stays in a partition that mixes
    neighbouring classes; a k-means++ start reaches the classes and has the higher objective (no labels used)."""
    task, y = ring_task(tiny_clip)
    zero_shot = METHODS.get("zeroshot_gpt")().fit(task).labels
    only_zero_shot = TransductiveLDA.from_params({"restarts": 0}).fit(task)
    ours = TransductiveLDA().fit(task)
    nmi = lambda labels: score_partitions(y, [labels])["nmi"]  # noqa: E731
    assert nmi(zero_shot) < 0.6 and nmi(only_zero_shot.labels) < 0.9 and nmi(ours.labels) > 0.99
    assert ours.info["chosen_start"] > 0
    assert ours.info["objective"][ours.info["chosen_start"]] == max(ours.info["objective"])
    assert len(ours.info["objective"]) == 1 + TransductiveLDA.Config().restarts


def test_words_no_image_has_are_left_out(tiny_clip):
    task, y = constructed_task(tiny_clip, words=WORDS[:2] + DISTRACTORS + WORDS[2:])
    result = TransductiveLDA().fit(task)
    assert result.info["kept_words"] == list(WORDS)
    assert (np.array(result.info["kept_words"])[result.labels] == np.array(WORDS)[y]).mean() > 0.95


@pytest.mark.parametrize("switch", [{"space": "image"}, {"span_words": "kept"}, {"balance": True},
                                    {"laplacian_weight": 0.5}, {"word_selection": "all"}, {"template": "bare"},
                                    {"iterations": 0}, {"logit_scale": 100.0}, {"restarts": 0},
                                    {"restarts": 3, "laplacian_weight": 0.2}, {"restart_space": "similarities"}])
def test_every_switch_runs_and_stays_order_equivariant(tiny_clip, switch):
    task, y = constructed_task(tiny_clip)
    perm = np.random.default_rng(5).permutation(task.n)
    method = TransductiveLDA.from_params(switch)
    a, b = method.fit(task), method.fit(permuted(task, perm))
    assert np.array_equal(b.labels, a.labels[perm]) and np.isfinite(a.representation).all()


def test_iterations_zero_is_the_zero_shot_argmax_over_the_kept_words(tiny_clip):
    task, _ = constructed_task(tiny_clip)
    result = TransductiveLDA.from_params({"iterations": 0}).fit(task)
    assert np.array_equal(result.labels, METHODS.get("zeroshot_gpt")().fit(task).labels)


@pytest.mark.parametrize("params, message", [
    ({"space": "pixels"}, "method.space='pixels' is not valid"),
    ({"span_words": "some"}, "method.span_words='some' is not valid"),
    ({"restart_space": "pixels"}, "method.restart_space='pixels' is not valid"),
    ({"shrinkage": 1.5}, r"method.shrinkage=1.5 must lie in \[0, 1\]"),
    ({"iterations": -1}, "method.iterations=-1 must be"),
    ({"space": "image", "shrinkage": 0.0}, "the shared covariance is singular .* set method.shrinkage > 0"),
])
def test_a_bad_setting_is_one_clear_error(tiny_clip, params, message):
    task, _ = constructed_task(tiny_clip)
    with pytest.raises(ValueError, match=message):
        TransductiveLDA.from_params(params).fit(task)


# ------------------------------------------------------------------------------------------ runner
def test_every_switch_lands_in_the_row_and_clusters_are_named_by_their_words(tmp_path, cache_dir, tiny_clip):
    overrides = ["method=transductive_lda", "dataset=synth_fruit", "dataset.n=80", "aspect=color", "logger=none",
                 "progress=false", f"paths.cache_dir={cache_dir}", f"results_file={tmp_path / 'runs.csv'}",
                 "method.balance=true", "method.gamma=0.5", "method.laplacian_weight=0.1", "method.space=image"]
    with initialize_config_module("mcbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    [(row, result)] = run_with_results(cfg)
    stored = pd.read_csv(tmp_path / "runs.csv").iloc[-1]
    hparams = json.loads(stored["hparams"])
    assert set(hparams) == {f.name for f in dataclasses.fields(TransductiveLDA.Config)}
    assert hparams | {"balance": True, "gamma": 0.5, "laplacian_weight": 0.1, "space": "image"} == hparams
    assert stored["method"] == "transductive_lda" and stored["representation"] == "transductive posteriors z"
    # each cluster is named by the kept word it is: the name of cluster c is kept_words[c]
    names = {n["cluster"]: n["word"] for n in result.info["cluster_names"]}
    assert names == {c: result.info["kept_words"][c] for c in names}
    assert json.loads(stored["name_collisions"]) == {}


@pytest.mark.slow
def test_defaults_pass_the_sanity_checks(tmp_path, cache_dir, tiny_clip):
    """``mcbench-sanity --fast`` on synth_fruit (the three checks, both aspects) for this method alone; the full
    suite (tests/test_sanity.py) runs every registered method, this one included."""
    sanity.main(["--fast", "--methods", "transductive_lda", "--datasets", "synth_fruit", "--variants", "defaults",
                 "--results", str(tmp_path / "sanity_runs.csv"), "--out", str(tmp_path), f"paths.cache_dir={cache_dir}"])
    verdicts = pd.read_csv(tmp_path / "sanity.csv")
    assert set(verdicts["check"]) == set(sanity.CHECKS) and len(verdicts) == 6
    assert verdicts["passed"].all(), "\n" + verdicts.to_string()
