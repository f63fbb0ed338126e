import numpy as np
import pytest

from mcbench.metrics import clustering_accuracy, score, score_partitions
from mcbench.protocol import KMeansProtocol


def test_metrics_against_hand_computed_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0, 0, 0, 1])
    s = score(y, p)
    # pairs: 6; agreements: (0,1) same/same, (2,3) diff... hand count: same-same {01}, diff-diff {03,13}, -> 3/6
    assert s["ri"] == pytest.approx(0.5)
    # MI = H(p) + H(y) - H(y,p); H(y)=ln2, H(p)=H(3/4,1/4), H(y,p)=H(1/2,1/4,1/4)
    hy = np.log(2)
    hp = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    hyp = -(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25))
    mi = hy + hp - hyp
    assert s["nmi"] == pytest.approx(mi / ((hy + hp) / 2))
    assert s["acc"] == pytest.approx(0.75)


def test_perfect_partition_up_to_relabelling():
    y = np.array([2, 2, 0, 0, 1, 1])
    s = score(y, np.array([5, 5, 3, 3, 4, 4]))
    assert s["nmi"] == pytest.approx(1.0) and s["ri"] == 1.0 and s["ari"] == 1.0 and s["acc"] == 1.0


def test_missing_labels_are_left_out():
    y = np.array([0, 0, 1, 1, -1])
    assert score(y, np.array([1, 1, 0, 0, 0]))["nmi"] == pytest.approx(1.0)


def test_accuracy_uses_one_to_one_matching():
    assert clustering_accuracy(np.array([0, 0, 0, 0]), np.array([0, 0, 1, 1])) == 0.5


def test_protocol_runs_seeded_restarts_and_averages():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2))])
    y = np.array([0] * 20 + [1] * 20)
    parts = KMeansProtocol(n_restarts=3).partitions(x, 2)
    assert len(parts) == 3
    assert score_partitions(y, parts)["nmi"] == pytest.approx(1.0)
    again = KMeansProtocol(n_restarts=3).partitions(x, 2)
    assert all((a == b).all() for a, b in zip(parts, again))


def test_protocol_rejects_k_larger_than_n():
    with pytest.raises(ValueError, match="larger than the number of images"):
        KMeansProtocol().partitions(np.zeros((3, 2)), 5)


def test_mean_nmi_is_score_partitions_nmi_without_the_other_metrics():
    """The row's NMI on its other aspects takes this shortcut: the same number, missing labels left out."""
    from mcbench.metrics import mean_nmi

    rng = np.random.default_rng(3)
    y = rng.integers(-1, 4, 60)
    parts = [rng.integers(0, 4, 60) for _ in range(5)]
    assert mean_nmi(y, parts) == score_partitions(y, parts)["nmi"]
