"""Controls: what a proxy method must beat (research notes, baselines §4).

* ``kmeans_image``   — k-means on the frozen image embeddings; blind to the named aspect.
* ``zeroshot_gpt``   — CLIP_GPT: argmax over the text embeddings of the prompt filled with each reference word.
* ``zeroshot_label`` — CLIP_label: the same with the true class names (an oracle reference, not a method).
* ``crl_projection`` — CRL (NeurIPS 2025): image embeddings projected on the normalised text embeddings of
  the reference words, r_i = x_i Tᵀ, then k-means; training-free. CRL reports the mean over 20 k-means runs
  (research notes, baselines §6); ``kmeans_restarts=20`` (default) follows it, ``0`` uses the run's shared
  protocol (``protocol.n_restarts``, 10). The mean is the same in expectation; 20 runs only narrow its spread.
  The row records the switch in ``hparams``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mcbench.contracts import ClusteringTask, FitResult, ProxyMethod, register_method
from mcbench.protocol import KMeansProtocol
from mcbench.prompts import word_text_embeddings


@dataclass
class KMeansImageConfig:
    pass


@register_method("kmeans_image")
class KMeansImage(ProxyMethod):
    """k-means on L2-normalised image embeddings."""

    Config = KMeansImageConfig
    implementation = "control"
    aspect_blind = True  # never reads the named aspect: the sanity suite's interest swap does not apply
    runs_on_features = True  # needs only the features: runs on feature datasets (clustpy_fruit, ...)

    def fit(self, task: ClusteringTask) -> FitResult:
        return FitResult.from_representation(task, task.features.embeddings, "image")


@dataclass
class ZeroShotConfig:
    template: str = "prompt"  # prompt: "<prompt with word>" (paper); bare: the word alone (official MaP code)


@register_method("zeroshot_gpt")
class ZeroShotGPT(ProxyMethod):
    """Each image takes the reference word of highest cosine similarity; the words are the clusters."""

    Config = ZeroShotConfig
    implementation = "control"

    def fit(self, task: ClusteringTask) -> FitResult:
        text = word_text_embeddings(task.encoder, task.prompt, task.reference_words, self.config.template)
        sims = task.features.embeddings @ text.T
        labels = sims.argmax(dim=1).cpu().numpy()
        return FitResult(partitions=[labels], representation=sims.cpu().numpy(), representation_name="zero-shot argmax",
                         proxies=text[labels].cpu().numpy())


@register_method("zeroshot_label")
class ZeroShotLabel(ZeroShotGPT):
    """CLIP_label: zero-shot with the true class names as words (an oracle upper reference)."""

    uses_class_names = True


@dataclass
class CRLConfig:
    template: str = "prompt"
    normalize: bool = False  # CRL clusters r_i as is
    kmeans_restarts: int = 20  # CRL: the mean over 20 k-means runs (seeds 0..19); 0: the shared protocol's restarts


@register_method("crl_projection")
class CRLProjection(ProxyMethod):
    """k-means on r_i = x_i Tᵀ (projection on the reference words' text embeddings)."""

    Config = CRLConfig
    implementation = "control"
    version = 2  # 2: CRL's 20 k-means runs (kmeans_restarts)

    def fit(self, task: ClusteringTask) -> FitResult:
        text = word_text_embeddings(task.encoder, task.prompt, task.reference_words, self.config.template)
        r = task.features.embeddings @ text.T
        if self.config.normalize:
            r = r / r.norm(dim=1, keepdim=True)
        restarts = self.config.kmeans_restarts
        if restarts < 0:
            raise ValueError(f"method.kmeans_restarts={restarts} must be ≥ 0 (0: the run's protocol.n_restarts)")
        if restarts:  # CRL's own count of k-means runs; the metrics are their mean, as for the shared protocol
            task = dataclasses.replace(task, protocol=KMeansProtocol(restarts))
        return FitResult.from_representation(task, r, "projection on reference words")
