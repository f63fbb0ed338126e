"""``run(cfg)``: the whole benchmark job, callable without Hydra (lightning-hydra-template's ``train``).

For each aspect of the dataset (or the one named by ``aspect=``) the runner builds a label-free task with
the images in a seeded random order, lets the method fit it, maps the partition back, scores it against
every aspect's ground truth, and appends one result row.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import mcbench
from mcbench.contracts import METHODS, ClusteringTask, FitResult, ImageFeatures, ProxyMethod
from mcbench.data.base import MultiViewDataset, build_dataset
from mcbench.devices import describe, resolve_device, set_cpu_threads
from mcbench.encoders import ENCODERS, ClipEncoder, create_encoder
from mcbench.features import image_features
from mcbench.ceiling_cache import ceiling_scores
from mcbench.hashing import stable_hash
from mcbench.results import schema
from mcbench.results.artifacts import save_task_artifacts
from mcbench.results.identity import NOT_IDENTITY_DATASET_KEYS, git_commit, tuned_on
from mcbench.metrics import mean_nmi, score_partitions
from mcbench.protocol import KMeansProtocol
from mcbench.naming import collisions, name_clusters, summary
from mcbench.parent_watch import stop_with_parent
from mcbench.prompts import word_text_embeddings
from mcbench.results.store import ResultStore, latest_per_run
from mcbench.tracking import GuardedTracker, build_tracker
from mcbench.words import WORD_MODES, WORD_SOURCES, ReferenceWords, apply_mode

log = logging.getLogger(__name__)
ORDERS = ("shuffled", "sorted")


class ConfigError(ValueError):
    """A bad setting, found before any work; the message names the key and the valid choices."""


def _params(node: Any) -> dict[str, Any]:
    out = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    out.pop("name", None)
    return out


@dataclass
class Job:
    """Everything built once per ``run`` and shared by its tasks."""

    cfg: DictConfig
    method: ProxyMethod
    dataset: MultiViewDataset
    aspects: list[str]
    device: torch.device
    tuned_on: str = "untuned"  # what the method's hyperparameters were chosen on (conf/tuned_on.yaml)


def prepare(cfg: DictConfig) -> Job:
    """Validate the configuration and build method and dataset; nothing heavy yet."""
    seed = cfg.seed
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed={seed!r} is not valid: use a non-negative integer (seed=0, seed=1, ...)")
    if cfg.words not in WORD_MODES:
        raise ConfigError(f"words={cfg.words!r} is not valid; choose one of: {', '.join(WORD_MODES)}")
    order = cfg.data.order
    if order not in ORDERS:
        raise ConfigError(f"data.order={order!r} is not valid; choose one of: {', '.join(ORDERS)}")
    per_class = cfg.data.get("per_class")
    if per_class is not None and (not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1):
        raise ConfigError(
            f"data.per_class={per_class!r} is not valid: use a positive number of images per class "
            f"(data.per_class=20), or data.per_class=null for every image"
        )
    n_restarts = cfg.protocol.n_restarts
    if not isinstance(n_restarts, int) or isinstance(n_restarts, bool) or n_restarts < 1:
        raise ConfigError(
            f"protocol.n_restarts={n_restarts!r} is not valid: use a positive integer (the k-means restarts whose "
            f"metrics are averaged; default 10)"
        )
    method = METHODS.get(cfg.method.name).from_params(_params(cfg.method))
    ENCODERS.get(cfg.encoder.name)
    WORD_SOURCES.get(cfg.llm.name)
    device = resolve_device(cfg.device)
    dataset = build_dataset(cfg.dataset.name, **_params(cfg.dataset), cache_dir=cfg.paths.cache_dir)
    if not dataset.has_images and not method.runs_on_features:
        able = [n for n in METHODS.names() if METHODS.get(n).runs_on_features]
        raise ConfigError(
            f"dataset '{dataset.name}' holds features, not images: method '{method.name}' needs images (the CLIP "
            f"encoder). Run a method that works on features ({', '.join(able)}), or an image dataset"
        )
    if cfg.aspect is None:
        aspects = list(dataset.aspects)
    else:
        if cfg.aspect not in dataset.aspects:
            raise ConfigError(
                f"aspect={cfg.aspect!r} is not an aspect of dataset '{dataset.name}'. "
                f"Valid aspects: {', '.join(dataset.aspects)}"
            )
        aspects = [cfg.aspect]
    for name in aspects:
        aspect = dataset.aspects[name]
        n_labelled = int((dataset.labels[name] >= 0).sum())
        if per_class is not None:  # a subset of per_class images per class: every class must have that many
            sizes = np.bincount(dataset.labels[name][dataset.labels[name] >= 0], minlength=aspect.k)
            if sizes.min() < per_class:
                raise ConfigError(
                    f"data.per_class={per_class}: class '{aspect.classes[int(sizes.argmin())]}' of aspect '{name}' "
                    f"has only {int(sizes.min())} images; use data.per_class={int(sizes.min())} or less"
                )
        if aspect.k > n_labelled:
            raise ConfigError(f"aspect '{name}' has k={aspect.k} classes but only {n_labelled} images")
        if aspect.k < 2:
            others = [a for a in dataset.aspects if a != name and dataset.aspects[a].k >= 2]
            raise ConfigError(
                f"aspect '{name}' of dataset '{dataset.name}' has {aspect.k} class ({', '.join(aspect.classes)}): "
                f"there is nothing to cluster. Add class folders, or run another aspect"
                + (f" (aspect={others[0]}; valid aspects: {', '.join(others)})" if others else "")
            )
        if aspect.prompt.count("*") != 1:
            raise ConfigError(
                f"the prompt template of aspect '{name}' is {aspect.prompt!r}; it must contain exactly one '*'"
            )
    return Job(cfg, method, dataset, aspects, device, tuned_on(method.name))


def balanced_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of exactly ``per_class`` images of each class (seeded draw), for the leakage experiments
    whose batches must line up with equal-sized classes."""
    rng = np.random.default_rng(seed)
    picks = []
    for c in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ConfigError(f"data.per_class={per_class}: class {c} has only {len(members)} images")
        picks.append(np.sort(rng.choice(members, per_class, replace=False)))
    return np.sort(np.concatenate(picks))


def task_order(labels: np.ndarray, seed: int, aspect: str, order: str) -> np.ndarray:
    """The order in which the method sees the images: a seeded permutation (or, for the official mode
    only, sorted by class as torchvision's ImageFolder delivers them)."""
    rng = np.random.default_rng([seed, int(stable_hash(aspect, 8), 16)])
    perm = rng.permutation(len(labels))
    if order == "sorted":
        perm = np.argsort(labels, kind="stable")
    return perm


def build_task(dataset: MultiViewDataset, aspect: str, features: ImageFeatures, encoder: ClipEncoder,
               words: tuple[str, ...], seed: int, order: str = "shuffled", device: torch.device | str = "cpu",
               protocol: KMeansProtocol = KMeansProtocol(), per_class: int | None = None,
               progress: bool = False, on_epoch=None) -> tuple[ClusteringTask, np.ndarray]:
    """The label-free task for one aspect, and ``perm``: task image i is dataset image ``perm[i]``."""
    aspect_obj = dataset.aspects[aspect]
    truth = dataset.labels[aspect]
    keep = np.flatnonzero(truth >= 0) if not per_class else balanced_subset(truth, per_class, seed)
    perm = keep[task_order(truth[keep], seed, aspect, order)]
    device = torch.device(device)
    task = ClusteringTask(
        dataset=dataset.name, aspect=aspect, concept=aspect_obj.concept_word, k=aspect_obj.k,
        prompt=aspect_obj.prompt, reference_words=tuple(words), aspect_ks=tuple(a.k for a in dataset.aspects.values()),
        features=ImageFeatures(features.embeddings[perm].to(device), features.pre_projection[perm].to(device)),
        encoder=encoder, seed=seed, device=device, protocol=protocol, show_progress=progress, on_epoch=on_epoch,
    )
    return task, perm


def reference_words(job: Job, aspect: str) -> ReferenceWords:
    """The reference words of one aspect for this job: the class names for an oracle control, else the configured
    word source's list after the ``words`` mode (noisy, truncated, ...); fewer than k words is a ConfigError."""
    aspect_obj = job.dataset.aspects[aspect]
    if job.method.uses_class_names:
        return ReferenceWords(aspect_obj.classes, "class_names", {"oracle": True})
    source = WORD_SOURCES.get(job.cfg.llm.name)(**_params(job.cfg.llm))
    words = apply_mode(source(job.dataset, aspect_obj), aspect_obj, job.cfg.words, job.cfg.dataset.get("seed", 0))
    if len(words.words) < aspect_obj.k:
        raise ConfigError(
            f"{len(words.words)} reference words for {job.dataset.name}/{aspect} but k={aspect_obj.k}: "
            f"a word list must have at least k words ({', '.join(words.words)})"
        )
    return words


def identity(job: Job, aspect: str, words: ReferenceWords, encoder_identity: str) -> dict[str, Any]:
    """The fields that define a task; ``run_id`` is their hash."""
    cfg = job.cfg
    return {
        "method": job.method.name,
        "method_version": job.method.version,
        "hparams": job.method.hparams(),
        "dataset": job.dataset.name,
        # where the data lies is not what it is: the revision fingerprints the content
        "dataset_params": {k: v for k, v in _params(cfg.dataset).items() if k not in NOT_IDENTITY_DATASET_KEYS},
        "dataset_revision": job.dataset.revision,
        "aspect": aspect,
        "encoder": encoder_identity,
        "words": list(words.words),
        "seed": cfg.seed,
        "data_order": cfg.data.order,
        "per_class": cfg.data.get("per_class"),
        "protocol": KMeansProtocol(cfg.protocol.n_restarts).describe(),
        "sanity_check": cfg.get("sanity_check"),
    }


def run(cfg: DictConfig) -> list[dict[str, Any]]:
    """Run every task of the configured job; return its rows: the ones written now, and for tasks skipped
    because they are already in the results file, the stored row (so the job's table is always complete)."""
    return [row for row, _ in run_with_results(cfg, keep_skipped=True)]


def run_with_results(cfg: DictConfig, keep_skipped: bool = False) -> list[tuple[dict[str, Any], FitResult | None]]:
    """``run``, also returning each task's ``FitResult`` (its ``info`` holds the partition in dataset order)."""
    stop_with_parent()  # in a sweep's worker process: end with the sweep, never append rows after it died
    store = ResultStore(cfg.results_file)
    store.check_writable()  # a bad results path: one error before any work, not a traceback after the fit
    job = prepare(cfg)
    if job.device.type == "cpu":
        set_cpu_threads()
    stored = store.read() if not cfg.force else None
    done = set() if cfg.force else store.completed_run_ids()
    encoder: ClipEncoder | None = None
    features: ImageFeatures | None = None
    tracker = build_tracker(cfg.logger.name, group=cfg.get("sweep_id") or None, **_params(cfg.logger))
    tracker = GuardedTracker(tracker, cfg.logger.name)  # a logger failure is a warning, never a lost row
    rows = []
    words_of = {aspect: reference_words(job, aspect) for aspect in job.aspects}  # every word list checked before any work
    for aspect in job.aspects:
        words = words_of[aspect]
        if features is None and not job.dataset.has_images:  # a feature dataset: its features, no encoder
            features = dataset_features(job.dataset)
        elif features is None:
            spec = cfg.encoder
            encoder = create_encoder(spec.model, spec.pretrained, job.device, download=spec.get("download", False))
            features, _ = image_features(encoder, job.dataset, cfg.paths.cache_dir, progress=cfg.progress)
        ident = identity(job, aspect, words, _encoder_identity(encoder))
        run_id = stable_hash(ident)
        if run_id in done:
            print(f"[mcbench] skip {job.method.name} {job.dataset.name}/{aspect} seed={cfg.seed}: "
                  f"already in {cfg.results_file} (run_id {run_id}; force=true reruns it)")
            if keep_skipped:
                match = stored[(stored["run_id"].astype(str) == run_id) & (stored["status"] == "ok")]
                rows.append((match.iloc[-1].to_dict(), None))
            continue
        tracker.start_task(cfg, ident, run_id)  # live loss curves while the method trains
        try:
            row, result = run_task(job, aspect, words, encoder, features, ident, run_id, on_epoch=tracker.log_epoch)
        except BaseException as exc:
            tracker.abort(exc)
            raise
        # the row first; what follows (the task's files, the logger) is optional and only warns when it fails
        row["wandb_run_id"] = tracker.current_run_id()
        if not store.append(row, skip_if_done=not cfg.force):  # "already done" is checked under the file lock
            print(f"[mcbench] skip {job.method.name} {job.dataset.name}/{aspect} seed={cfg.seed}: another job "
                  f"wrote it to {cfg.results_file} meanwhile (run_id {run_id}); its row is kept, this one dropped")
            if keep_skipped:
                rows.append((_stored_row(store, run_id), None))
            continue
        try:
            if cfg.get("artifacts_dir"):
                save_task_artifacts(cfg.artifacts_dir, row, result)
        except OSError as exc:
            log.warning("mcbench: the task's files were not saved under %s (%s); its row is in %s",
                        cfg.get("artifacts_dir"), exc, cfg.results_file)
        tracker.log_task(row, result.history)
        print(f"[mcbench] {row['method']} {row['dataset']}/{row['aspect']} seed={row['seed']}: "
              f"NMI {row['nmi']:.4f} RI {row['ri']:.4f} ARI {row['ari']:.4f} ({row['runtime_s']:.1f}s)")
        rows.append((row, result))
    return rows


def _stored_row(store: ResultStore, run_id: str) -> dict[str, Any]:
    """The newest stored row of ``run_id`` (the file is history: one row per run counts)."""
    df = latest_per_run(store.read())
    return df[df["run_id"].astype(str) == run_id].iloc[-1].to_dict()


def run_task(job: Job, aspect: str, words: ReferenceWords, encoder: ClipEncoder, features: ImageFeatures,
             ident: dict[str, Any], run_id: str, on_epoch=None) -> tuple[dict[str, Any], FitResult]:
    cfg = job.cfg
    aspect_obj = job.dataset.aspects[aspect]
    truth = job.dataset.labels[aspect]
    task, perm = build_task(job.dataset, aspect, features, encoder, words.words, cfg.seed, cfg.data.order,
                            job.device, KMeansProtocol(cfg.protocol.n_restarts), cfg.data.get("per_class"),
                            progress=bool(cfg.progress), on_epoch=on_epoch)
    # the ceiling: a probe trained with the labels (the evaluator's reference, never shown to the method)
    ceiling = (ceiling_scores(features.embeddings.float().cpu().numpy(), truth, job.dataset.revision, aspect,
                              _encoder_identity(encoder), cfg.paths.cache_dir) if cfg.protocol.get("ceiling", True)
               else None)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    start = time.perf_counter()
    try:
        result = job.method.fit(task)
    except FloatingPointError as exc:  # a non-finite representation: name the epoch and the setting
        raise FloatingPointError(_nan_message(job.method, getattr(exc, "history", None) or [], str(exc))) from exc
    fit_s = time.perf_counter() - start
    _check_finite(job.method, result)
    matched_view, view_nmi = "", []
    if job.method.selection == "best_match":  # an oracle selection: the view that best matches the named aspect
        if not result.views:
            raise ValueError(f"method '{job.method.name}' is scored by best match but returned no views")
        matched_view, view_nmi = best_match(result.views, truth[perm])
        result.partitions = [result.views[matched_view]]
    # map each partition from task order back to dataset order (images without this aspect get -1)
    partitions = []
    for p in result.partitions:
        back = np.full(len(job.dataset), -1, dtype=np.int64)
        back[perm] = p
        partitions.append(back)
    metrics = score_partitions(truth, [p for p in partitions])
    others = {}
    for other, y in job.dataset.labels.items():
        if other != aspect:
            both = (y >= 0) & (partitions[0] >= 0)
            others[other] = round(mean_nmi(y[both], [p[both] for p in partitions]), 6)
    names = [] if encoder is None else name_clusters(  # a feature dataset has no text side to name clusters with
        result.labels, result.proxies if result.proxies is not None else task.features.embeddings.cpu().numpy(),
        task.reference_words, word_text_embeddings(encoder, task.prompt, task.reference_words))
    result.info["cluster_names"] = [asdict(n) for n in names]
    result.info["partition_dataset_order"] = partitions[0]
    result.info["task_order"] = perm
    row = {
        "run_id": run_id,
        "status": "ok",
        "method": job.method.name,
        "implementation": job.method.implementation,
        "method_version": job.method.version,
        "dataset": job.dataset.name,
        "aspect": aspect,
        "seed": cfg.seed,
        "k": aspect_obj.k,
        "n_images": len(perm),
        "skipped_images": job.dataset.info.get("skipped_images", 0),
        "encoder": cfg.encoder.name if encoder is not None else "none",
        "encoder_identity": _encoder_identity(encoder),
        **{m: metrics[m] for m in schema.metric_names()},
        **{c: metrics[c] for c in schema.spread_columns()},
        "nmi_other_aspects": json.dumps(others, sort_keys=True),
        "representation": result.representation_name,
        "cluster_names": summary(names),
        "name_collisions": json.dumps(collisions(names), sort_keys=True),
        "protocol": ident["protocol"],
        "data_order": cfg.data.order,
        "per_class": cfg.data.get("per_class") or "",
        "sanity_check": cfg.get("sanity_check") or "",
        "words_mode": "class_names" if job.method.uses_class_names else cfg.words,
        "words_source": words.source,
        "n_words": len(words.words),
        "words_hash": words.digest,
        # a list written with the class names in view (datasets/*/words/*.json "oracle_like"), or the class names
        "words_oracle_like": bool(words.provenance.get("oracle_like") or words.provenance.get("oracle")
                                  or words.source.startswith("exact:")),
        "hparams": json.dumps(job.method.hparams(), sort_keys=True),
        # values a method derives from its settings and the task (Multi-MaP's α, β, lr in the token space)
        "effective_hparams": json.dumps(result.info.get("effective_hparams", {}), sort_keys=True, default=str),
        "dataset_params": json.dumps(ident["dataset_params"], sort_keys=True),
        "dataset_revision": job.dataset.revision,
        "dataset_seed": "" if cfg.dataset.get("seed") is None else cfg.dataset.seed,  # generated data only
        "difficulty": cfg.dataset.get("difficulty") or "",
        "tuned_on": job.tuned_on,
        "selection": job.method.selection,
        "matched_view": matched_view,  # best_match: the index of the view scored (oracle-selected by NMI)
        "view_nmi": json.dumps([round(v, 6) for v in view_nmi]) if view_nmi else "",  # every view's NMI
        "ceiling_nmi": ceiling["nmi"] if ceiling else "",
        "ceiling_acc": ceiling["acc"] if ceiling else "",
        "config_hash": stable_hash(OmegaConf.to_container(cfg, resolve=True)),
        "runtime_s": round(time.perf_counter() - start, 3),
        "fit_s": round(fit_s, 3),
        "epochs_run": len(result.history),
        "sweep_id": cfg.get("sweep_id") or "",
        "mcbench_version": mcbench.__version__,
        "git_commit": git_commit(),
        **describe(job.device),
        "extract_batch_size": features.extract_batch_size,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return row, result


#: the encoder identity of a feature dataset's rows: the dataset's own features stand in for the image embeddings
NO_ENCODER = "none (dataset features)"


def _encoder_identity(encoder: ClipEncoder | None) -> str:
    return encoder.identity if encoder is not None else NO_ENCODER


def dataset_features(dataset: MultiViewDataset) -> ImageFeatures:
    """A feature dataset's features as the task's "image features" (as given: not L2-normalised)."""
    x = torch.from_numpy(np.ascontiguousarray(dataset.features, dtype=np.float32))
    return ImageFeatures(embeddings=x, pre_projection=x)


def best_match(views: list[np.ndarray], truth: np.ndarray) -> tuple[int, list[float]]:
    """The view (task order) of highest NMI with ``truth`` (task order, -1 = unlabelled), first on ties, and every
    view's NMI: ClustPy's ``MultipleLabelingsConfusionMatrix(...).aggregate("max")`` for one labelling."""
    scores = [mean_nmi(truth, [v]) for v in views]  # mean_nmi leaves the unlabelled (-1) images out
    return int(np.argmax(scores)), scores


def _check_finite(method: ProxyMethod, result: FitResult) -> None:
    if _first_nonfinite(result.history) is not None:
        raise FloatingPointError(_nan_message(method, result.history))


def _first_nonfinite(history: list[dict[str, Any]]) -> tuple[int, list[str]] | None:
    for epoch, entry in enumerate(history):
        bad = [k for k, v in entry.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            return epoch, bad
    return None


def _nan_message(method: ProxyMethod, history: list[dict[str, Any]], detail: str = "") -> str:
    """One line: which method, which epoch (and loss terms), and which setting to lower."""
    first = _first_nonfinite(history)
    if first is not None:
        where = f"{', '.join(first[1])} became NaN/Inf at epoch {first[0]}"
    elif history:
        where = f"the losses stayed finite for {len(history)} epochs but {detail or 'the result is NaN/Inf'}"
    else:
        where = detail or "the result is NaN/Inf"
    hparams = method.hparams()
    rates = [f"method.{k}={hparams[k]}" for k in hparams if k == "lr" or k.startswith("lr_")]
    cause = (f"The learning rate ({', '.join(rates)}) is the likely cause: try a smaller one."
             if rates else "Check the method's settings and the features.")
    return f"{method.name}: {where}; no result row was written. {cause}"
