"""Device selection and the GPU path (docs/gpu.md). The CUDA tests are marked ``cuda`` and skipped without a GPU;
``bash scripts/gpu_checks.sh`` runs them (and the GPU figures) on a machine that has one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import normalized_mutual_info_score

from mcbench.contracts import METHODS
from mcbench.data.base import build_dataset
from mcbench.encoders import create_encoder
from mcbench.features import image_features
from mcbench.runner import build_task
from test_cli import FAST, mcbench

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# CPU vs GPU tolerance (docs/gpu.md): features are extracted under fp16 autocast on the GPU.
FEATURE_COSINE_MIN = 0.999
NMI_TOLERANCE = 0.02


def test_a_row_records_the_device_versions_and_the_extraction_batch(tmp_path):
    mcbench(tmp_path, "method=kmeans_image", "dataset=synth_cards", "aspect=suits", "device=auto", *FAST)
    row = pd.read_csv(tmp_path / "runs.csv").iloc[-1]
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert row["device"] == expected and row["torch_version"] == torch.__version__
    assert int(row["extract_batch_size"]) == 64  # the default batch fit (nothing halved)
    # the second run reads the features from the cache and still knows the batch they were made with
    mcbench(tmp_path, "method=zeroshot_gpt", "dataset=synth_cards", "aspect=suits", "device=auto", *FAST)
    assert int(pd.read_csv(tmp_path / "runs.csv").iloc[-1]["extract_batch_size"]) == 64


@pytest.fixture(scope="module")
def cards(cache_dir):
    return build_dataset("synth_cards", n=120, seed=0, cache_dir=str(cache_dir))


def _features(device: str, cards, cache_dir, batch_size: int = 64):
    encoder = create_encoder("mcbench-tiny-clip", "mcbench", torch.device(device))
    return encoder, image_features(encoder, cards, cache_dir=None, progress=False, batch_size=batch_size)[0]


@pytest.mark.cuda
@needs_cuda
def test_gpu_features_match_cpu_features(cards, cache_dir):
    _, cpu = _features("cpu", cards, cache_dir)
    _, gpu = _features("cuda", cards, cache_dir)
    cos = torch.nn.functional.cosine_similarity(cpu.embeddings, gpu.embeddings.cpu(), dim=-1)
    assert float(cos.min()) >= FEATURE_COSINE_MIN, float(cos.min())


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("method", ["multi_map", "multi_sub", "multi_dproxy"])
def test_gpu_and_cpu_runs_agree_within_the_tolerance(method, cards, cache_dir):
    nmi = {}
    for device in ("cpu", "cuda"):
        encoder, feats = _features(device, cards, cache_dir)
        task, perm = build_task(cards, "suits", feats, encoder, cards.aspects["suits"].reference_words, 0,
                                "shuffled", torch.device(device))
        result = METHODS.get(method).from_params({}).fit(task)
        nmi[device] = normalized_mutual_info_score(cards.labels["suits"][perm], result.labels)
    assert abs(nmi["cpu"] - nmi["cuda"]) <= NMI_TOLERANCE, nmi


@pytest.mark.cuda
@needs_cuda
def test_out_of_memory_halves_the_extraction_batch_and_records_it(cards):
    """A real out-of-memory: cap this process's GPU memory so a batch of 4096 images cannot fit."""
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, 1.5e9 / total))
    try:
        big = build_dataset("synth_cards", n=4096, seed=0)
        encoder = create_encoder("ViT-B-32", "random", torch.device("cuda"))
        feats = image_features(encoder, big, cache_dir=None, progress=False, batch_size=4096)[0]
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert 0 < feats.extract_batch_size < 4096
    assert np.isfinite(feats.embeddings.cpu().numpy()).all() and len(feats) == 4096
