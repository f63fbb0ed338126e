"""Every loss term of the three proxy methods at its published weight and sign (issue 18).

For each method: the full batch objective on a tiny fixed example against numbers computed here with plain torch
(never through the method's own loss helpers), the weights a fit actually trains with, and one optimiser step that
lowers each term it should. ``scripts/mutation.py`` runs cosmic-ray over the loss code against this file
(docs/mutation.md): a flipped or dropped term must fail a test here.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mcbench.contracts import METHODS
from mcbench.methods import multi_dproxy as dp
from mcbench.methods.multi_map import MultiMaP, MultiMaPConfig
from mcbench.methods.multi_sub import clustering_loss

# a tiny fixed example: 3 images, 4 dimensions
X = torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, -1.0], [1.0, 1.0, 1.0, 1.0]])
T = torch.tensor([[2.0, 1.0, 0.0, 0.0], [0.0, 3.0, 1.0, -1.0], [-1.0, 1.0, 1.0, 0.5]])
W = torch.tensor([[0.5, -0.5, 1.0, 0.0], [1.0, 2.0, 0.0, 0.0], [0.0, 0.0, -1.0, 1.5]])
CONCEPT = torch.tensor([0.25, 0.0, 0.5, -0.25])
ANCHORS = torch.tensor([[0.0, -1.0, 1.0, 0.5], [1.0, 1.0, 0.0, 0.0], [0.5, 0.0, -1.0, 1.0]])


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine, written out."""
    return (a * b).sum(1) / (a.pow(2).sum(1).sqrt() * b.pow(2).sum(1).sqrt())


# ------------------------------------------------------------------------------------------- Multi-MaP


def test_multi_map_batch_objective_is_alignment_plus_alpha_concept_plus_beta_reference():
    method = MultiMaP(MultiMaPConfig(alpha=0.3, beta=0.7, weight_decay=0.1, decay_scope="batch"))
    loss, terms = method.batch_objective(X, T, W, CONCEPT, ANCHORS)
    align = (1 - cosine(X, T)).mean()
    concept = ((W - CONCEPT) ** 2).sum() / W.numel()
    reference = ((W - ANCHORS) ** 2).sum() / W.numel()
    decay = 0.5 * 0.1 * (W ** 2).sum()
    assert float(terms["align"]) == pytest.approx(float(align), rel=1e-6)
    assert float(terms["concept"]) == pytest.approx(float(concept), rel=1e-6)
    assert float(terms["reference"]) == pytest.approx(float(reference), rel=1e-6)
    assert float(loss) == pytest.approx(float(align + 0.3 * concept + 0.7 * reference + decay), rel=1e-6)
    # the same numbers written down once, so a change in the hand formulas above is seen too
    assert float(align) == pytest.approx(0.44372, abs=1e-5) and float(concept) == pytest.approx(0.90625)
    # explicit (effective) weights replace the configured ones; table decay is Adagrad's, not the loss's
    loss2, _ = MultiMaP(MultiMaPConfig(weight_decay=0.1, decay_scope="table")).batch_objective(
        X, T, W, CONCEPT, ANCHORS, alpha=2.0, beta=5.0)
    assert float(loss2) == pytest.approx(float(align + 2.0 * concept + 5.0 * reference), rel=1e-6)


def _mm_fit(make_task, n=40, **params):
    task, _ = make_task("synth_fruit", "color", n=n)
    return task, METHODS.get("multi_map").from_params({"batch_size": n, **params}).fit(task)


# ------------------------------------------------------------------------------------------- Multi-Sub

V = torch.tensor([[0.0, 0.0], [0.3, 0.4], [2.0, 0.0], [0.0, 0.5]])
LABELS = torch.tensor([0, 0, 1, 1])


def _pairs_by_hand(v, labels, margin, squared):
    intra, inter = [], []
    for i in range(len(v)):
        for j in range(len(v)):
            if i == j:
                continue
            d = math.sqrt(float(((v[i] - v[j]) ** 2).sum()))
            if labels[i] == labels[j]:
                intra.append(d * d if squared else d)
            else:
                inter.append(max(0.0, margin - d))
    return sum(intra) / len(intra), sum(inter) / len(inter)


@pytest.mark.parametrize("squared", [True, False])
def test_multi_sub_phase_two_objective_matches_hand_computed_pairs(squared):
    lam, margin = 0.3, 1.5
    loss, intra, inter = clustering_loss(V, LABELS, lam, margin, "squared" if squared else "euclidean")
    e_intra, e_inter = _pairs_by_hand(V, LABELS, margin, squared)
    assert float(intra) == pytest.approx(e_intra, rel=1e-5)
    assert float(inter) == pytest.approx(e_inter, rel=1e-5)
    assert float(loss) == pytest.approx(lam * e_intra + (1 - lam) * e_inter, rel=1e-5)
    if squared:  # intra (0,1): 0.25, (2,3): 4.25; inter: (0,2) 0, (0,3) 1.0, (1,2) 0, (1,3) 1.5 − √0.1
        assert e_intra == pytest.approx(2.25) and e_inter == pytest.approx((2.5 - math.sqrt(0.1)) / 4)


def test_multi_sub_phase_two_objective_defaults_and_edge_cases():
    """The paper's λ = 0.5 and the code's margin 1 as defaults; a term without pairs is 0 (never NaN); the
    distance's gradient stays finite where two rows coincide."""
    e_intra, e_inter = _pairs_by_hand(V, LABELS, 1.0, True)
    loss, _, _ = clustering_loss(V, LABELS)
    assert float(loss) == pytest.approx(0.5 * e_intra + 0.5 * e_inter, rel=1e-5)
    one_class = clustering_loss(V, torch.zeros(4, dtype=torch.long))
    assert float(one_class[2]) == 0.0 and float(one_class[1]) > 0
    singletons = clustering_loss(V, torch.arange(4))
    assert float(singletons[1]) == 0.0 and float(singletons[2]) > 0
    v = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.5]], requires_grad=True)  # rows 0 and 1 coincide
    loss, _, _ = clustering_loss(v, torch.tensor([0, 1, 1]), intra_distance="euclidean")
    loss.backward()
    assert torch.isfinite(v.grad).all()


def _ms_fit(make_task, **params):
    task, _ = make_task("synth_shapes", "shape", n=40)
    base = {"rounds": 1, "phase1_epochs": 0, "phase2_epochs": 0, "batch_size": 0}
    return METHODS.get("multi_sub").from_params({**base, **params}).fit(task)


# ------------------------------------------------------------------------------------------- Multi-DProxy

F_ = torch.tensor([[1.0, 0.5, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.5, 0.0, 0.0, 1.0]])
PSEUDO = torch.tensor([0, 1, 1])


def _infonce_by_hand(f, w, sigma, pseudo, hard):
    s = [[float(cosine(f[i:i + 1], w[j:j + 1])) / sigma for j in range(len(w))] for i in range(len(f))]
    out = []
    for i in range(len(f)):
        negatives = sorted((s[i][j] for j in range(len(w)) if pseudo[j] != pseudo[i]), reverse=True)[:hard]
        if not negatives:
            out.append(0.0)
            continue
        out.append(-math.log(math.exp(s[i][i]) / (math.exp(s[i][i]) + sum(math.exp(v) for v in negatives))))
    return sum(out) / len(out)


def test_multi_dproxy_batch_objective_is_la_plus_alpha_lu_plus_beta_lc():
    cfg = dp.MultiDProxyConfig(sigma=0.5)
    centroid = torch.tensor([0.1, 0.2, 0.0, -0.1])
    loss, terms = dp.batch_objective(cfg, W, T, X, F_, False, centroid, PSEUDO, 1, alpha=0.3, beta=0.15)
    l_a = (1 - cosine(T, X)).mean()
    l_u = ((W - centroid) ** 2).sum() / len(W)
    l_c = _infonce_by_hand(F_, T, 0.5, PSEUDO, 1)
    assert float(terms["l_a"]) == pytest.approx(float(l_a), rel=1e-5)
    assert float(terms["l_u"]) == pytest.approx(float(l_u), rel=1e-5)
    assert float(terms["l_c"]) == pytest.approx(l_c, rel=1e-5)
    assert float(loss) == pytest.approx(float(l_a) + 0.3 * float(l_u) + 0.15 * l_c, rel=1e-5)
    # the literal note form: mean_i log Σ_{j≠i} e^{s_ij}
    note = dp.MultiDProxyConfig(sigma=0.5, lc_mode="note")
    _, terms = dp.batch_objective(note, W, T, X, F_, False, centroid, None, 1, alpha=0.3, beta=0.15)
    s = [[float(cosine(F_[i:i + 1], T[j:j + 1])) / 0.5 for j in range(3)] for i in range(3)]
    expected = sum(math.log(sum(math.exp(s[i][j]) for j in range(3) if j != i)) for i in range(3)) / 3
    assert float(terms["l_c"]) == pytest.approx(expected, rel=1e-5)
    # align_target=fused: L_a on F; use_lc=false: no L_c at all
    fused = dp.MultiDProxyConfig(align_target="fused", use_lc=False)
    loss, terms = dp.batch_objective(fused, W, T, X, F_, False, centroid, PSEUDO, 1, alpha=0.3, beta=0.15)
    assert float(terms["l_a"]) == pytest.approx(float((1 - cosine(F_, X)).mean()), rel=1e-5)
    assert float(terms["l_c"]) == 0.0
    assert float(loss) == pytest.approx(float((1 - cosine(F_, X)).mean()) + 0.3 * float(l_u), rel=1e-5)


def test_multi_dproxy_contrast_edge_cases():
    """hard_negatives=0 takes every other-cluster negative; one image alone has no negative (the term is 0)."""
    assert float(dp.loss_contrast(F_, T, 0.5, "infonce_hard", PSEUDO, 0)) == pytest.approx(
        _infonce_by_hand(F_, T, 0.5, PSEUDO, 3), rel=1e-5)
    assert float(dp.loss_contrast(F_, T, 0.5, "infonce_hard", PSEUDO, 10)) == pytest.approx(  # more than exist
        _infonce_by_hand(F_, T, 0.5, PSEUDO, 3), rel=1e-5)
    assert float(dp.loss_contrast(F_[:1], T[:1], 0.5, "infonce_hard", PSEUDO[:1], 0)) == 0.0
    assert float(dp.loss_contrast(F_[:1], T[:1], 0.5, "note")) == 0.0
    two = dp.loss_contrast(F_[:2], T[:2], 0.5, "note")  # log Σ_{j≠i} e^{s_ij} with one other image
    s01, s10 = float(cosine(F_[0:1], T[1:2])) / 0.5, float(cosine(F_[1:2], T[0:1])) / 0.5
    assert float(two) == pytest.approx((s01 + s10) / 2, rel=1e-5)


@pytest.mark.parametrize("epochs", [10, 30])
def test_multi_dproxy_weight_schedules_match_the_paper(epochs):
    for t in range(2 * epochs + 1):  # α is capped at 0.5 from t = E on (a fit's t stays below E)
        assert dp.alpha_schedule(t, epochs) == pytest.approx(min(0.5, 0.1 + 0.4 * t / epochs))
        assert dp.beta_schedule(t, epochs) == pytest.approx(0.1 * (1 - math.cos(math.pi * t / epochs)))


@pytest.mark.parametrize("term, alpha, beta", [("l_a", 0.0, 0.0), ("l_u", 1.0, 0.0), ("l_c", 0.0, 1.0)])
def test_multi_dproxy_one_step_lowers_each_term(term, alpha, beta):
    """One Adam step on the latents and the fusion, with only ``term`` weighted (plus L_a), lowers that term."""
    gen = torch.Generator().manual_seed(0)
    n, dim, words = 12, 8, 5
    cand = F.normalize(torch.randn(words, dim, generator=gen), dim=-1)
    v = F.normalize(torch.randn(n, dim, generator=gen), dim=-1)
    pool = dp.CandidatePool(tuple(f"w{i}" for i in range(words)), cand, tau_alpha=0.5)
    latent = torch.nn.Parameter(torch.randn(n, dim, generator=gen) * 0.5)
    fusion = dp.GatedFusion(dim, 2, 1, "batch", 0.1, 0.0, gen)
    pseudo = torch.arange(n) % 3
    cfg = dp.MultiDProxyConfig(sigma=0.1)
    weights = {"l_a": 1.0, "l_u": alpha, "l_c": beta}
    opt = torch.optim.Adam([latent, *fusion.parameters()], lr=0.01)

    def objective():
        w = pool.proxies(latent)
        fused, _ = fusion(v, w)
        _, terms = dp.batch_objective(cfg, w, w, v, fused, False, pool.centroid, pseudo, 3, alpha, beta)
        return terms

    before = objective()
    total = weights[term] * before[term]
    opt.zero_grad()
    total.backward()
    opt.step()
    after = objective()
    assert float(after[term].detach()) < float(before[term].detach())


# ------------------------------------------------------------- fits on the tiny CLIP (after the cheap checks)


def test_multi_map_fit_trains_with_the_recorded_effective_weights(make_task):
    """Every epoch's loss = align + α_eff·concept + β_eff·reference with the α, β recorded in the row."""
    _, result = _mm_fit(make_task, epochs=4, alpha=0.3, beta=0.4)
    eff = result.info["effective_hparams"]
    assert eff["alpha"] > 10 * 0.3 and eff["beta"] > 10 * 0.4  # the token space needs far larger weights
    assert result.history[-1]["reference"] > 0  # the proxies moved, so the β term is live
    for h in result.history:
        assert h["loss"] == pytest.approx(h["align"] + eff["alpha"] * h["concept"] + eff["beta"] * h["reference"],
                                          rel=1e-5)


def test_multi_map_token_space_keeps_the_official_ratio_of_each_term_to_alignment(make_task):
    """At initialisation each constraint's ratio to the alignment term is within 10 % of the official space's
    (the official space measured here by a fit with proxy_space=official; the reference term, 0 at
    initialisation in both spaces, at one reference word's distance from another)."""
    task, token = _mm_fit(make_task, epochs=1, alpha=0.3, beta=0.4)
    _, official = _mm_fit(make_task, epochs=1, alpha=0.3, beta=0.4, proxy_space="official")
    eff, h_tok, h_off = token.info["effective_hparams"], token.history[0], official.history[0]
    # the recorded initial values are the terms at w_i(0) over all images (the first whole-batch epoch's)
    for key, value in (("align_token", h_tok["align"]), ("align_official", h_off["align"]),
                       ("concept_token", h_tok["concept"]), ("concept_official", h_off["concept"])):
        assert eff[key] == pytest.approx(value, rel=1e-4), key
    ratio_tok = eff["alpha"] * h_tok["concept"] / h_tok["align"]
    ratio_off = 0.3 * h_off["concept"] / h_off["align"]
    assert ratio_tok == pytest.approx(ratio_off, rel=0.10)

    words = list(task.reference_words)

    def pairwise(v: torch.Tensor) -> float:
        k = len(v)
        return float(sum(((v[i] - v[j]) ** 2).mean() for i in range(k) for j in range(k) if i != j) / (k * (k - 1)))

    move_tok = pairwise(task.encoder.token_embeddings(words))
    move_off = pairwise(task.encoder.encode_text(words, normalize=False))
    assert eff["reference_move_token"] == pytest.approx(move_tok, rel=1e-4)
    assert eff["reference_move_official"] == pytest.approx(move_off, rel=1e-4)
    ratio_ref_tok = eff["beta"] * move_tok / h_tok["align"]
    ratio_ref_off = 0.4 * move_off / h_off["align"]
    assert ratio_ref_tok == pytest.approx(ratio_ref_off, rel=0.10)
    # without the switch the constraints are ~1000x weaker relative to alignment (issue 18)
    _, raw = _mm_fit(make_task, epochs=1, alpha=0.3, beta=0.4, constraint_scale="none")
    assert raw.info["effective_hparams"]["alpha"] == 0.3 and raw.info["effective_hparams"]["beta"] == 0.4
    assert 0.3 * raw.history[0]["concept"] / raw.history[0]["align"] < ratio_off / 100


def test_multi_map_one_step_lowers_each_term(make_task):
    """History entries are the terms before each whole-batch step: entry 1 is after one step."""
    _, align_only = _mm_fit(make_task, epochs=2, alpha=0.0, beta=0.0)
    assert align_only.history[1]["align"] < align_only.history[0]["align"]
    _, concept_only = _mm_fit(make_task, epochs=2, alpha=1.0, beta=0.0, constraint_scale="none")
    assert concept_only.history[1]["concept"] < concept_only.history[0]["concept"]
    # the reference term is 0 at the start; the β pull keeps the proxies nearer their reference words
    _, free = _mm_fit(make_task, epochs=4, alpha=1.0, beta=0.0)
    _, held = _mm_fit(make_task, epochs=4, alpha=1.0, beta=50.0)
    assert held.history[-1]["reference"] < free.history[-1]["reference"]


def test_multi_sub_one_phase_one_step_lowers_the_alignment_loss(make_task):
    result = _ms_fit(make_task, phase1_epochs=2)
    align = [h["align"] for h in result.history if h["phase"] == 1.0]
    assert align[1] < align[0]
    assert 0.05 < align[0] < 2.0  # mean_i (1 − cos): the images and the initial prompt are far from orthogonal


def test_multi_sub_one_phase_two_step_lowers_the_clustering_loss_and_moves_only_f(make_task):
    result = _ms_fit(make_task, phase2_epochs=2, lr_projection_cluster=1e-2)
    cluster = [h for h in result.history if h["phase"] == 2.0]
    assert cluster[1]["cluster"] < cluster[0]["cluster"]
    for h in cluster:  # the history's total is the λ mix of its own terms, each a mean over pairs
        assert h["cluster"] == pytest.approx(0.5 * h["intra"] + 0.5 * h["inter"], rel=1e-5)
        assert 0 < h["intra"] <= 8 and 0 <= h["inter"] <= 1  # v = [unit; unit]: ‖v_i − v_j‖² ≤ 8; hinge ≤ m = 1
    assert result.info["projection_change"] > 0


def test_multi_sub_history_records_the_objective_of_the_state_it_stepped_from(make_task):
    """With zero learning rates the state never moves, so each phase's recorded loss must equal the objective
    recomputed here from the returned representation (plain torch, pair by pair for Phase II)."""
    frozen = {"lr_proxy": 0.0, "lr_projection": 0.0, "lr_projection_cluster": 0.0}
    one = _ms_fit(make_task, phase1_epochs=1, readout="image", **frozen)
    x, t = torch.as_tensor(one.representation), torch.as_tensor(one.proxies)
    assert one.history[0]["align"] == pytest.approx(float((1 - cosine(x, t)).mean()), rel=1e-4)
    two = _ms_fit(make_task, phase2_epochs=1, **frozen)
    v, labels = torch.as_tensor(two.representation), torch.as_tensor(two.info["weights"]).argmax(1)
    intra, inter = _pairs_by_hand(v, labels, 1.0, True)
    h = two.history[0]
    assert h["intra"] == pytest.approx(intra, rel=1e-4) and h["inter"] == pytest.approx(inter, rel=1e-4, abs=1e-6)
    assert h["cluster"] == pytest.approx(0.5 * intra + 0.5 * inter, rel=1e-4)


def test_multi_sub_without_phase_two_the_projection_stays(make_task):
    """The control of the test above: no Phase II epoch, no Phase I epoch, no change of f."""
    assert _ms_fit(make_task).info["projection_change"] == 0.0


def test_multi_dproxy_fit_trains_with_the_scheduled_weights(make_task):
    task, _ = make_task("synth_shapes", "color", n=60)
    epochs = 4
    result = METHODS.get("multi_dproxy").from_params({"epochs": epochs, "batch_size": 30}).fit(task)
    for t, h in enumerate(result.history):
        alpha, beta = min(0.5, 0.1 + 0.4 * t / epochs), 0.1 * (1 - math.cos(math.pi * t / epochs))
        assert h["alpha"] == pytest.approx(alpha) and h["beta"] == pytest.approx(beta)
        assert h["loss"] == pytest.approx(h["l_a"] + alpha * h["l_u"] + beta * h["l_c"], rel=1e-4, abs=1e-6)
    assert result.history[-1]["l_c"] > 0 and result.history[-1]["l_u"] > 0
    off = METHODS.get("multi_dproxy").from_params(
        {"epochs": epochs, "batch_size": 30, "use_lu": False, "use_lc": False}).fit(task)
    assert all(h["alpha"] == 0.0 and h["beta"] == 0.0 for h in off.history)
