"""Every registered method honours the ProxyMethod contract (parametrized over the registry, timm-style)."""

import numpy as np
import pytest
import torch

from mcbench.contracts import METHODS, FitResult

# fast settings per method, so the contract runs in seconds
FAST = {"multi_map": {"epochs": 3, "batch_size": 40},
        "multi_sub": {"rounds": 1, "phase1_epochs": 2, "phase2_epochs": 2},
        "multi_dproxy": {"epochs": 6}}


def fit(name, task):
    cls = METHODS.get(name)
    params = {k: v for k, v in FAST.get(name, {}).items() if k in {f.name for f in __import__("dataclasses").fields(cls.Config)}}
    return cls.from_params(params).fit(task)


@pytest.mark.parametrize("name", METHODS.names())
def test_fit_returns_one_declared_partition_in_task_order(name, make_task):
    task, _ = make_task("synth_fruit", "color", n=80)
    result = fit(name, task)
    assert isinstance(result, FitResult) and result.representation_name
    assert all(p.shape == (task.n,) for p in result.partitions)
    assert result.labels.min() >= 0
    if result.representation is not None:
        assert len(result.representation) == task.n and np.isfinite(result.representation).all()


@pytest.mark.parametrize("name", METHODS.names())
def test_same_seed_same_result_different_seed_different_trajectory(name, make_task):
    task, _ = make_task("synth_cards", "suits", n=80, seed=1)
    seen: list[dict] = []  # ClusteringTask.log_epoch (W&B's live curves): one call per epoch, as the history
    a, b = fit(name, __import__("dataclasses").replace(task, on_epoch=seen.append)), fit(name, task)
    assert seen == a.history
    assert all((p == q).all() for p, q in zip(a.partitions, b.partitions))
    if a.representation is not None:
        assert np.array_equal(a.representation, b.representation)
    assert a.history == b.history
    if a.history:  # a trained method: another seed gives another trajectory
        other, _ = make_task("synth_cards", "suits", n=80, seed=2)
        c = fit(name, other)
        assert c.history != a.history


def test_the_task_carries_no_labels(make_task):
    task, labels = make_task("synth_shapes", "shape", n=40)
    fields = {f: getattr(task, f) for f in task.__dataclass_fields__}
    assert not any(k in fields for k in ("labels", "y", "truth", "classes"))
    for value in fields.values():
        if isinstance(value, (np.ndarray, torch.Tensor)):
            assert value.shape != labels.shape or not np.array_equal(np.asarray(value), labels)


def test_task_order_is_a_seeded_shuffle_not_the_label_order(make_task):
    task, labels = make_task("synth_shapes", "shape", n=120, seed=0)
    again, labels_again = make_task("synth_shapes", "shape", n=120, seed=0)
    assert np.array_equal(labels, labels_again)
    sorted_task, sorted_labels = make_task("synth_shapes", "shape", n=120, seed=0, order="sorted")
    assert (np.diff(sorted_labels) >= 0).all() and not (np.diff(labels) >= 0).all()

