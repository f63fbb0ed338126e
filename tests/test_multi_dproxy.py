"""Multi-DProxy: each equation on a hand-computed case, the schedules, the pruning, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from mcbench.contracts import METHODS
from mcbench.methods.multi_dproxy import (
    ABLATIONS,
    CrossAttention,
    GatedFusion,
    MultiDProxyConfig,
    alpha_schedule,
    beta_schedule,
    gated_residual,
    loss_align,
    loss_contrast,
    loss_user,
    mix_lambda,
    pool_schedule,
    prune_epochs,
    resolve_ablation,
)

FAST = {"epochs": 4, "batch_size": 50}


def fit(make_task, dataset="synth_shapes", aspect="color", n=120, seed=0, **params):
    task, labels = make_task(dataset, aspect, n=n, seed=seed)
    result = METHODS.get("multi_dproxy").from_params({**FAST, **params}).fit(task)
    return task, labels, result


# ------------------------------------------------------------------------------ gates and mixing


def test_gate_formula_on_a_hand_case():
    gate = nn.Linear(4, 2)
    with torch.no_grad():
        gate.weight.zero_()
        gate.bias.copy_(torch.tensor([0.0, math.log(3.0)]))  # σ = 0.5 and 0.75
    x, x_attn = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, -1.0]])
    out, g = gated_residual(x, x_attn, gate)
    assert torch.allclose(g, torch.tensor([[0.5, 0.75]]))
    assert torch.allclose(out, torch.tensor([[1.0 + 0.5 * 3.0, 2.0 - 0.75]]))


def test_gates_have_the_input_shape_and_lie_in_0_1():
    torch.manual_seed(0)  # unseeded, inputs x10 sometimes drove a float32 sigmoid to exactly 1.0
    gate = nn.Linear(16, 8)
    x, x_attn = torch.randn(5, 8) * 3, torch.randn(5, 8) * 3
    out, g = gated_residual(x, x_attn, gate)
    assert out.shape == g.shape == (5, 8)
    assert bool(((g > 0) & (g < 1)).all())


def test_lambda_is_sigmoid_of_cosine_over_tau():
    t = torch.tensor([[1.0, 0.0], [2.0, 0.0], [1.0, 0.0]])
    v = torch.tensor([[3.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    lam = mix_lambda(t, v, tau=0.5)
    assert lam.shape == (3, 1)
    assert torch.allclose(lam[:, 0], torch.sigmoid(torch.tensor([2.0, 0.0, -2.0])))


def test_closed_gates_leave_the_lambda_mix_of_the_inputs():
    g = torch.Generator().manual_seed(0)
    fusion = GatedFusion(8, 2, 2, "batch", tau=0.3, gate_bias=-1e4, generator=g)
    for gate in [*fusion.gate_v, *fusion.gate_t]:
        nn.init.zeros_(gate.weight)
    v, t = torch.randn(6, 8), torch.randn(6, 8)
    fused, stats = fusion(v, t)
    lam = torch.sigmoid(torch.nn.functional.cosine_similarity(t, v, dim=-1) / 0.3)[:, None]
    assert torch.allclose(fused, lam * t + (1 - lam) * v, atol=1e-6)
    assert float(stats["gate_v"].detach()) == pytest.approx(0.0, abs=1e-6)


def test_one_global_token_makes_attention_a_linear_map():
    attn = CrossAttention(8, 2, torch.Generator().manual_seed(1))
    x, y = torch.randn(5, 1, 8), torch.randn(5, 1, 8)
    (_, _, wv, wo), (_, _, bv, bo) = attn.weight, attn.bias
    expected = (y @ wv.T + bv) @ wo.T + bo
    assert torch.allclose(attn(x, y), expected, atol=1e-5)


def test_batch_tokens_let_each_sample_attend_to_the_others():
    fusion = GatedFusion(8, 2, 1, "batch", tau=0.1, gate_bias=0.0, generator=torch.Generator().manual_seed(2))
    v, t = torch.randn(4, 8), torch.randn(4, 8)
    t2 = t.clone()
    t2[3] += 1.0
    assert not torch.allclose(fusion(v, t)[0][0], fusion(v, t2)[0][0])  # sample 0 sees sample 3's proxy
    fusion.tokens = "global"
    assert torch.allclose(fusion(v, t)[0][0], fusion(v, t2)[0][0])  # one token: it does not


# ------------------------------------------------------------------------------ schedules


@pytest.mark.parametrize("t, alpha, beta", [(0, 0.1, 0.0), (50, 0.3, 0.1), (100, 0.5, 0.2)])
def test_loss_weight_schedules(t, alpha, beta):
    assert alpha_schedule(t, 100) == pytest.approx(alpha)
    assert beta_schedule(t, 100) == pytest.approx(beta)


def test_alpha_is_capped_at_one_half():
    assert alpha_schedule(150, 100) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "n_words, k, to_k, sizes",
    [
        (48, 3, True, [24, 12, 6, 3]),  # the paper's 2^(E/R)·M pool
        (8, 4, True, [4]),
        (10, 4, True, [5, 4]),
        (17, 13, True, [13]),
        (5, 2, True, [2]),
        (4, 4, True, []),
        (10, 4, False, [5]),  # only whole halvings: ⌊log₂(10/4)⌋ = 1, ends above M
        (17, 13, False, []),
    ],
)
def test_pool_schedule_halves_toward_k_and_never_below(n_words, k, to_k, sizes):
    assert pool_schedule(n_words, k, to_k) == sizes
    assert all(s >= k for s in sizes)
    if to_k:
        assert not sizes or sizes[-1] == k
    else:
        assert len(sizes) == math.floor(math.log2(n_words / k))


def test_prune_epochs_auto_leaves_a_last_phase_with_the_final_pool():
    assert prune_epochs(2, 60, 0) == [20, 40]
    assert prune_epochs(2, 60, 30) == [30, 60]  # an explicit R = E/β prunes at the very end, as the paper
    assert prune_epochs(0, 60, 0) == []


# ------------------------------------------------------------------------------ losses


def test_alignment_loss_on_a_hand_case():
    target = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    v = torch.tensor([[3.0, 0.0], [1.0, 0.0]])
    assert float(loss_align(target, v)) == pytest.approx((0.0 + 1.0) / 2)


def test_alignment_targets_differ_in_a_fit(make_task):
    *_, text = fit(make_task, align_target="text", epochs=1)
    *_, fused = fit(make_task, align_target="fused", epochs=1)
    assert text.history[0]["l_a"] != pytest.approx(fused.history[0]["l_a"])


def test_user_interest_loss_on_a_hand_case():
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert float(loss_user(w, torch.tensor([0.5, 0.5]))) == pytest.approx(0.5)
    assert float(loss_user(w, w.mean(0) + torch.tensor([0.0, 1.0]))) == pytest.approx((0.25 + 2.25 + 0.25 + 0.25) / 2)


F3 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # s_ij = cos(f_i, w_j) with w = f: [[1,0,1],[0,1,0],[1,0,1]]


def test_contrast_note_form_is_log_sum_exp_over_the_others():
    expected = (2 * math.log(1 + math.e) + math.log(2)) / 3
    assert float(loss_contrast(F3, F3, 1.0, "note")) == pytest.approx(expected)


def test_contrast_infonce_hard_uses_other_pseudo_clusters_only():
    pseudo = torch.tensor([0, 1, 0])
    # sample 0's only negative is sample 1 (sample 2 shares its pseudo-cluster): -log(e / (e + e^0))
    one = math.log(1 + math.exp(-1))
    assert float(loss_contrast(F3, F3, 1.0, "infonce_hard", pseudo, hard=1)) == pytest.approx(one)
    # with two hard negatives sample 1 keeps both of its negatives (s = 0, 0)
    assert float(loss_contrast(F3, F3, 1.0, "infonce_hard", pseudo, hard=2)) == pytest.approx(
        (2 * one + math.log(1 + 2 / math.e)) / 3)


def test_contrast_mines_the_hardest_negative():
    f = torch.tensor([[1.0, 0.0]])
    w = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    f3 = torch.cat([f, w[1:]])
    pseudo = torch.tensor([0, 1, 2])
    loss = loss_contrast(f3, w, 0.5, "infonce_hard", pseudo, hard=1)
    s = (torch.nn.functional.normalize(f3, dim=-1) @ torch.nn.functional.normalize(w, dim=-1).T / 0.5)
    rows = [torch.logsumexp(torch.stack([s[i, i], max(s[i, j] for j in range(3) if j != i)]), 0) - s[i, i]
            for i in range(3)]
    assert float(loss) == pytest.approx(float(torch.stack(rows).mean()), rel=1e-5)


# ------------------------------------------------------------------------------ the method


def test_ablations_map_onto_switches():
    resolved = {a: resolve_ablation(MultiDProxyConfig(ablation=a)) for a in ABLATIONS}
    assert resolved["none"] == MultiDProxyConfig()
    assert not resolved["no_dynamic"].dynamic
    assert not resolved["no_uconstraint"].use_lu
    assert not resolved["no_cconstraint"].use_lc
    assert resolved["concat_fusion"].fusion == "concat"
    assert resolved["text_only"].modality == "text"
    assert resolved["visual_only"].modality == "visual"


def test_an_ablation_is_recorded_with_the_switches_it_sets():
    hparams = METHODS.get("multi_dproxy").from_params({"ablation": "no_dynamic"}).hparams()
    assert hparams["ablation"] == "no_dynamic" and hparams["dynamic"] is False


def test_bad_switch_values_are_clear_errors_before_any_work():
    with pytest.raises(ValueError, match="lc_mode"):
        METHODS.get("multi_dproxy").from_params({"lc_mode": "margin"})
    with pytest.raises(NotImplementedError, match="patch"):
        METHODS.get("multi_dproxy").from_params({"fusion_tokens": "patch"})


def test_fit_returns_fused_partition_proxies_and_loss_history(make_task):
    task, _, result = fit(make_task)
    assert result.representation_name == "fused F"
    assert result.representation.shape == (task.n, task.features.embeddings.shape[1])
    assert len(result.partitions) == task.protocol.n_restarts and result.labels.shape == (task.n,)
    assert result.proxies.shape == (task.n, task.features.embeddings.shape[1])
    assert len(result.history) == FAST["epochs"]
    assert {"loss", "l_a", "l_u", "l_c", "alpha", "beta", "pool", "lambda"} <= set(result.history[0])
    assert all(math.isfinite(v) for entry in result.history for v in entry.values())


def test_pool_shrinks_on_schedule_and_never_below_k(make_task):
    # synth_shapes/shape: 10 words, k = 4 -> 10 -> 5 -> 4, pruned after epochs 2 and 4 of 6
    task, _, result = fit(make_task, aspect="shape", epochs=6)
    assert [h["pool"] for h in result.history] == [10, 10, 5, 5, 4, 4]
    schedule = result.info["pool_schedule"]
    assert [(s["epoch"], s["pool"]) for s in schedule] == [(0, 10), (2, 5), (4, 4)]
    assert len(result.info["final_words"]) == task.k
    *_, fixed = fit(make_task, aspect="shape", epochs=6, dynamic=False)
    assert [h["pool"] for h in fixed.history] == [10] * 6


def test_pool_of_k_words_is_never_pruned(make_task):
    task, _ = make_task("synth_shapes", "color", n=80, words=("red", "yellow", "green", "blue"))
    result = METHODS.get("multi_dproxy").from_params({**FAST, "epochs": 3}).fit(task)
    assert [h["pool"] for h in result.history] == [4, 4, 4]


def test_same_seed_same_result_other_seed_other_result(make_task):
    *_, a = fit(make_task, seed=0)
    *_, b = fit(make_task, seed=0)
    *_, c = fit(make_task, seed=1)
    assert np.array_equal(a.representation, b.representation)
    assert a.history == b.history
    assert not np.allclose(a.representation, c.representation)


def test_the_same_images_in_another_order_give_the_same_fused_features(make_task):
    """Latents, mini-batches (3 of 50 here) and the in-training k-means follow the image, not its task position."""
    out = []
    for order in ("shuffled", "sorted"):
        task, _ = make_task("synth_shapes", "shape", n=120, seed=0, order=order)
        result = METHODS.get("multi_dproxy").from_params(dict(FAST)).fit(task)
        x = task.features.embeddings.double().numpy()
        perm = np.argsort(x @ np.linspace(1, 2, x.shape[1]), kind="stable")  # one order for both runs
        out.append((result.representation[perm], result.history))
    assert np.array_equal(out[0][0], out[1][0]) and out[0][1] == out[1][1]


def test_visual_only_ablation_is_the_image_embedding(make_task):
    task, _, result = fit(make_task, ablation="visual_only", epochs=1)
    image = torch.nn.functional.normalize(task.features.embeddings.float(), dim=-1).numpy()
    assert np.allclose(result.representation, image, atol=1e-6)


def test_concat_fusion_keeps_the_alignment_loss_alive(make_task):
    """L_a (text target) is cos(T⁰_i, v_i) in the joint space whatever the fusion: the only change of the
    w/o-GFusion ablation is F = [T⁰; V]. In F's space the two halves are orthogonal: L_a would be 1, no gradient."""
    *_, concat = fit(make_task, ablation="concat_fusion", epochs=6)
    *_, gated = fit(make_task, epochs=6)
    assert concat.history[0]["l_a"] == pytest.approx(gated.history[0]["l_a"], abs=1e-6)  # same T⁰, same V
    assert concat.history[-1]["l_a"] < concat.history[0]["l_a"] - 0.05


@pytest.mark.parametrize("ablation", ["concat_fusion", "text_only", "no_cconstraint"])
def test_every_ablation_runs(make_task, ablation):
    task, _, result = fit(make_task, ablation=ablation, epochs=2)
    assert result.labels.shape == (task.n,)


@pytest.mark.parametrize("switch", [{"proxy_space": "token"}, {"fusion_tokens": "global"}, {"lc_mode": "note"},
                                    {"score": "max"}, {"prune_to_k": False}])
def test_every_switch_runs(make_task, switch):
    task, _, result = fit(make_task, aspect="shape", n=60, epochs=2, **switch)
    assert result.labels.shape == (task.n,)
    assert result.proxies.shape == (task.n, task.features.embeddings.shape[1])
