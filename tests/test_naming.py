import numpy as np
import torch

from mcbench.naming import collisions, name_clusters, summary


def test_each_cluster_takes_its_closest_word_with_margin_and_runner_up():
    words = ("red", "green", "blue")
    text = torch.eye(3)
    points = np.array([[1, 0.1, 0], [0.9, 0, 0.2], [0, 1, 0.3], [0.1, 0.8, 0]])
    names = name_clusters(np.array([0, 0, 1, 1]), points, words, text)
    assert [n.word for n in names] == ["red", "green"]
    assert names[0].runner_up in {"green", "blue"} and names[0].margin > 0.5
    assert summary(names).startswith("red(2,+")


def test_two_clusters_with_one_name_are_reported_as_a_collision():
    names = name_clusters(np.array([0, 1]), np.array([[1.0, 0.1], [1.0, -0.1]]), ("a", "b"), torch.eye(2))
    assert collisions(names) == {"a": [0, 1]}
