"""Datasets: the multi-view dataset contract, the synthetic generators and the on-disk loaders."""

from mcbench.data.base import Aspect, MultiViewDataset, DATASETS, build_dataset

__all__ = ["Aspect", "MultiViewDataset", "DATASETS", "build_dataset"]
