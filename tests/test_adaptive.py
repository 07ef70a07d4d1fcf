"""Solver backends, adaptive steps, the adjoint, per-sample stepping, ode_max_nfe, checkpointing, continuous
depth."""

from __future__ import annotations

import time

import pytest
import torch

from bert_ode import BertOdeConfig, BertOdeModel
from bert_ode.modeling_bert_ode import OdeBlock
from bert_ode.solvers import (
    ADAPTIVE_METHODS,
    ADJOINT_BACKENDS,
    BACKEND_METHODS,
    MaxNfeExceeded,
    torchdyn_available,
)
from bert_ode.tableaux import TABLEAUX

TORCHDYN_OK, TORCHDYN_WHY = torchdyn_available()
needs_torchdyn = pytest.mark.skipif(not TORCHDYN_OK, reason=TORCHDYN_WHY or "torchdyn not importable")

TINY = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def _backend_param(backend, *rest):
    marks = [needs_torchdyn] if backend == "torchdyn" else []
    return pytest.param(backend, *rest, marks=marks, id="-".join([backend, *map(str, rest)]))


def _model(dtype=torch.float32, seed=0, **overrides):
    torch.manual_seed(seed)
    return BertOdeModel(BertOdeConfig(**{**TINY, **overrides})).to(dtype).eval()


def _batch(batch=3, seq=7, seed=1):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 99, (batch, seq), generator=generator)
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[1, seq - 2 :] = 0
    if batch > 2:
        mask[2, seq - 4 :] = 0
    return ids, mask


# ------------------------------------------------------------------------------------------------------------
# Config validation
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(ode_backend="scipy"), "ode_backend"),
        (dict(ode_rtol=0.0), "ode_rtol"),
        (dict(ode_atol=-1e-3), "ode_atol"),
        (dict(ode_atol="1e-3"), "ode_atol"),
        (dict(ode_rtol=float("inf")), "ode_rtol"),
        (dict(ode_adjoint="yes"), "ode_adjoint"),
        (dict(ode_max_nfe=0), "ode_max_nfe"),
        (dict(ode_max_nfe=2.5), "ode_max_nfe"),
        (dict(ode_checkpointing="all"), "ode_checkpointing"),
        (dict(continuous_depth=1), "continuous_depth"),
        (dict(ode_method="dopri8", ode_backend="torchdiffeq"), "ode_method"),
        (dict(ode_method="dopri5"), "ode_method"),  # adaptive needs a library backend
        (dict(ode_method="rk2-gated", ode_backend="torchdiffeq"), "ode_method"),
        (
            dict(ode_method="rk4", ode_backend="torchdiffeq"),
            "ode_method",
        ),  # torchdiffeq's rk4 is the 3/8 rule
        (dict(ode_method="midpoint", ode_backend="torchode"), "ode_method"),
        (dict(ode_method="bosh3", ode_backend="torchdyn"), "ode_method"),
        (dict(ode_adjoint=True), "ode_adjoint"),
        (dict(ode_adjoint=True, ode_backend="torchode", ode_method="dopri5"), "ode_adjoint"),
        (dict(ode_adjoint=True, ode_backend="torchdiffeq", ode_checkpointing="stage"), "ode_checkpointing"),
        (
            dict(ode_adjoint=True, ode_backend="torchdiffeq", ode_method="dopri5", hidden_dropout_prob=0.1),
            "deterministic vector field: set the dropout probabilities to 0",
        ),
        (dict(continuous_depth=True, norm_position="pre"), "continuous_depth"),
        (dict(continuous_depth=True, ode_scope="layer"), "continuous_depth"),
    ],
)
def test_invalid_solver_config_raises(overrides, field):
    with pytest.raises(ValueError, match=field):
        BertOdeConfig(**{**TINY, **overrides})


def test_invalid_assignment_raises():
    config = BertOdeConfig(**TINY)
    with pytest.raises(ValueError, match="ode_backend"):
        config.ode_backend = "diffrax"
    config.ode_method = "dopri5"  # valid on its own; the block names the conflict with the native backend
    model = BertOdeModel(config)
    with pytest.raises(ValueError, match="native"):
        model(torch.tensor([[1, 2, 3]]))


# ------------------------------------------------------------------------------------------------------------
# Backends agree with the native fixed-step integrator
# ------------------------------------------------------------------------------------------------------------

FIXED_PAIRS = [
    _backend_param(backend, method)
    for backend, table in BACKEND_METHODS.items()
    for method in ("euler", "midpoint", "heun", "rk4")
    if method in table
]


@pytest.mark.parametrize("backend, method", FIXED_PAIRS)
def test_backend_matches_native_fixed_step(backend, method):
    model = _model(ode_method=method, ode_steps=3)
    ids, mask = _batch()
    with torch.no_grad():
        native = model(ids, attention_mask=mask)
        model.config.ode_backend = backend
        other = model(ids, attention_mask=mask)
    torch.testing.assert_close(other.last_hidden_state, native.last_hidden_state, rtol=0, atol=1e-5)
    assert other.nfe == native.nfe
    assert [s.steps for s in other.solver_stats] == [3] * len(other.solver_stats)


# ------------------------------------------------------------------------------------------------------------
# Adaptive solves
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend", [_backend_param("torchdiffeq"), _backend_param("torchode"), _backend_param("torchdyn")]
)
def test_adaptive_error_falls_as_tolerance_tightens(backend):
    ids, mask = _batch(batch=2, seq=5)
    pre_layer = dict(ode_scope="layer", norm_position="pre")
    reference_model = _model(torch.float64, ode_method="rk4", ode_steps=128, **pre_layer)
    with torch.no_grad():
        for p in reference_model.encoder.parameters():
            p.mul_(5.0)  # at BERT's initial scale the field is too weak to need more than one step
        reference = reference_model(ids, attention_mask=mask).last_hidden_state
    model = _model(torch.float64, ode_method="dopri5", ode_backend=backend, **pre_layer)
    model.load_state_dict(reference_model.state_dict())
    errors, nfes = [], []
    for tolerance in (1e-2, 1e-4, 1e-6, 1e-8):
        model.config.ode_rtol = model.config.ode_atol = tolerance
        with torch.no_grad():
            out = model(ids, attention_mask=mask)
        errors.append((out.last_hidden_state - reference).abs().max().item())
        nfes.append(out.nfe)
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 1e-3 * errors[0], errors
    assert nfes == sorted(nfes) and nfes[-1] > nfes[0], nfes
    assert all(s.steps >= 1 and s.rejected >= 0 for s in out.solver_stats)


# Every (backend, method) the config accepts with ode_adjoint=True: the adjoint backends' adaptive methods.
ADJOINT_PAIRS = [
    (backend, method)
    for backend, methods in BACKEND_METHODS.items()
    if backend in ADJOINT_BACKENDS
    for method in methods
    if method in ADAPTIVE_METHODS
]
FIXED_STEP_PAIRS = [
    (backend, method)
    for backend, methods in {"native": {name: name for name in TABLEAUX}, **BACKEND_METHODS}.items()
    for method in methods
    if method not in ADAPTIVE_METHODS
]


def _weighted_loss_gradients(model, inputs_embeds, mask):
    """Gradients of a fixed random weighting of the last hidden state (a square-sum of a LayerNorm output
    would be a constant with zero gradient)."""
    model.zero_grad()
    embeds = inputs_embeds.clone().requires_grad_(True)
    hidden = model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
    weights = torch.randn(hidden.shape, dtype=hidden.dtype, generator=torch.Generator().manual_seed(5))
    (hidden * weights).sum().backward()
    named = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    named["inputs_embeds"] = embeds.grad.clone()
    return named


@pytest.mark.parametrize(
    "backend, method", [_backend_param(backend, method) for backend, method in ADJOINT_PAIRS]
)
def test_adjoint_gradients_match_backprop(backend, method):
    # initializer_range 0.2: a field strong enough that a backward solve off the forward trajectory
    # shows (at BERT's 0.02 the fields are nearly zero and any reconstruction looks right).
    tolerance = 1e-5 if method == "adaptive_heun" else 1e-7  # a second-order pair needs many more steps
    overrides = dict(
        ode_method=method, ode_backend=backend, ode_rtol=tolerance, ode_atol=tolerance, initializer_range=0.2
    )
    model = _model(torch.float64, **overrides)
    ids, mask = _batch(batch=2, seq=5)
    embeds = torch.randn(
        2, 5, TINY["hidden_size"], dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    )
    direct = _weighted_loss_gradients(model, embeds, mask)
    model.config.ode_adjoint = True
    adjoint = _weighted_loss_gradients(model, embeds, mask)
    assert direct.keys() == adjoint.keys()
    # Gradients that can differ: every encoder parameter's but the key bias (softmax ignores it: exactly 0).
    encoder = [name for name in direct if name.startswith("encoder.") and not name.endswith("key.bias")]
    assert encoder and all(direct[name].abs().max() > 1e-6 for name in encoder)
    for name in direct:
        scale = direct[name].abs().max().clamp_min(1e-6)  # the floor: the key bias's exact zero
        relative = ((adjoint[name] - direct[name]).abs().max() / scale).item()
        assert relative <= 1e-3, (name, relative)


@pytest.mark.parametrize(
    "backend, method", [_backend_param(backend, method) for backend, method in FIXED_STEP_PAIRS]
)
def test_adjoint_with_fixed_steps_is_refused_and_points_to_checkpointing(backend, method):
    with pytest.raises(ValueError, match="ode_adjoint=True needs an adaptive ode_method") as error:
        BertOdeConfig(**TINY, ode_method=method, ode_backend=backend, ode_adjoint=True)
    assert "ode_checkpointing" in str(error.value) and "dopri5" in str(error.value)


def test_fixed_step_continuous_adjoint_is_wrong_which_is_why_it_is_refused():
    # The reason for the refusal, on the scalar example: y1 = y0 + tanh(w y0), one Euler step,
    # dL/dw for L = y1. torchdiffeq's continuous adjoint rebuilds y0 as y1 - F(y1) and gets another value.
    import torchdiffeq

    class Field(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(1.5, dtype=torch.float64))

        def forward(self, t, y):
            return torch.tanh(self.w * y)

    field, y0 = Field(), torch.tensor([0.8], dtype=torch.float64)
    times = torch.tensor([0.0, 1.0], dtype=torch.float64)
    exact = (1 - torch.tanh(torch.tensor(1.5 * 0.8, dtype=torch.float64)) ** 2) * 0.8  # d/dw tanh(w y0)
    torchdiffeq.odeint(field, y0, times, method="euler")[-1].sum().backward()
    assert field.w.grad.item() == pytest.approx(exact.item(), rel=1e-12)
    field.w.grad = None
    torchdiffeq.odeint_adjoint(field, y0, times, method="euler")[-1].sum().backward()
    assert abs(field.w.grad.item() - exact.item()) > 0.1  # 0.048 against the exact 0.244


@pytest.mark.parametrize(
    "backend", [_backend_param("torchdiffeq"), _backend_param("torchode"), _backend_param("torchdyn")]
)
def test_max_nfe_stops_an_explosive_block_quickly(backend):
    config = BertOdeConfig(
        **TINY, ode_method="dopri5", ode_backend=backend, ode_rtol=1e-12, ode_atol=1e-12, ode_max_nfe=300
    )
    block = OdeBlock(config, name="encoder.layer.7.attention_ode")

    def explosive(t, y):  # y' = 50 y^2 blows up at t = 1/50 for y(0) = 1
        return 50.0 * y * y

    started = time.perf_counter()
    with pytest.raises(MaxNfeExceeded, match=r"ode_max_nfe=300") as error:
        block(explosive, torch.ones(2, 3, 4))
    assert "encoder.layer.7.attention_ode" in str(error.value)
    assert isinstance(error.value, RuntimeError)
    assert time.perf_counter() - started < 10


def test_max_nfe_bounds_fixed_step_blocks_before_they_start():
    model = _model(ode_method="rk4", ode_steps=10, ode_max_nfe=39)
    with pytest.raises(MaxNfeExceeded, match="ode_max_nfe=39"):
        model(torch.tensor([[1, 2, 3]]))
    model.config.ode_max_nfe = 40
    assert model(torch.tensor([[1, 2, 3]])).nfe == 4 * 40


def test_max_nfe_bounds_a_stiff_model_block():
    # Large weights make the attention field stiff; a tight tolerance would take thousands of steps.
    model = _model(
        ode_method="dopri5", ode_backend="torchdiffeq", ode_rtol=1e-10, ode_atol=1e-10, ode_max_nfe=60
    )
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.mul_(20.0)
    started = time.perf_counter()
    with pytest.raises(MaxNfeExceeded, match="encoder.layer.0.attention_ode"):
        model(*_batch()[:1])
    assert time.perf_counter() - started < 10


# ------------------------------------------------------------------------------------------------------------
# Per-sample stepping (torchode)
# ------------------------------------------------------------------------------------------------------------


def test_per_sample_stepping_equals_solving_each_sample_alone():
    model = _model(torch.float64, ode_method="dopri5", ode_backend="torchode", ode_rtol=1e-5, ode_atol=1e-6)
    ids, mask = _batch(batch=3, seq=8)
    with torch.no_grad():
        embeds = model.embeddings.word_embeddings(ids)
        embeds[0] *= 4.0  # makes the first sample's dynamics differ from the others'
        batched = model(inputs_embeds=embeds, attention_mask=mask)
        for i in range(ids.shape[0]):
            length = int(mask[i].sum())
            # alone and unpadded: padding must change neither the result nor the steps
            alone = model(inputs_embeds=embeds[i : i + 1, :length])
            torch.testing.assert_close(
                batched.last_hidden_state[i, :length], alone.last_hidden_state[0], rtol=0, atol=1e-8
            )
            for batch_stats, alone_stats in zip(batched.solver_stats, alone.solver_stats, strict=True):
                assert batch_stats.steps_per_sample[i] == alone_stats.steps_per_sample[0]
                assert batch_stats.nfe_per_sample[i] == alone_stats.nfe_per_sample[0]
    per_sample = sum(s.nfe_per_sample for s in batched.solver_stats)
    assert len(set(per_sample.tolist())) > 1, per_sample  # the samples took steps of their own
    assert batched.nfe == int(per_sample.max())


# ------------------------------------------------------------------------------------------------------------
# Save / load
# ------------------------------------------------------------------------------------------------------------


def test_save_load_with_adaptive_settings(tmp_path):
    overrides = dict(
        ode_method="tsit5",
        ode_backend="torchode",
        ode_rtol=1e-4,
        ode_atol=1e-5,
        ode_max_nfe=500,
        ode_scope="layer",
    )
    model = _model(**overrides)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "solvers.py").exists()  # copied for trust_remote_code loading
    loaded = BertOdeModel.from_pretrained(tmp_path).eval()
    for key, value in overrides.items():
        assert getattr(loaded.config, key) == value
    ids, mask = _batch()
    with torch.no_grad():
        a, b = model(ids, attention_mask=mask), loaded(ids, attention_mask=mask)
    torch.testing.assert_close(a.last_hidden_state, b.last_hidden_state, rtol=0, atol=0)
    assert a.nfe == b.nfe


# ------------------------------------------------------------------------------------------------------------
# Activation checkpointing
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "checkpointing, backend, method",
    [("block", "native", "rk4"), ("stage", "native", "rk4"), ("stage", "torchdiffeq", "dopri5")],
)
def test_checkpointing_gives_the_same_loss_and_gradients(checkpointing, backend, method):
    # Dropout on: checkpointing must replay the same dropout masks when it recomputes.
    overrides = dict(
        ode_method=method, ode_backend=backend, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1
    )
    model = _model(**overrides).train()
    ids, mask = _batch()

    def loss_and_gradients():
        model.zero_grad()
        torch.manual_seed(5)
        out = model(ids, attention_mask=mask)
        loss = out.last_hidden_state.square().mean()
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None], out.nfe

    loss, grads, nfe = loss_and_gradients()
    model.config.ode_checkpointing = checkpointing
    loss_ck, grads_ck, nfe_ck = loss_and_gradients()
    torch.testing.assert_close(loss_ck, loss, rtol=0, atol=1e-6)
    assert len(grads) == len(grads_ck)
    for g, g_ck in zip(grads, grads_ck, strict=True):
        torch.testing.assert_close(g_ck, g, rtol=1e-5, atol=1e-6)
    assert nfe_ck == nfe  # the recomputation is not reported as forward evaluations


# ------------------------------------------------------------------------------------------------------------
# Weight-tied continuous depth
# ------------------------------------------------------------------------------------------------------------

CONTINUOUS = dict(continuous_depth=True, ode_scope="layer", norm_position="pre", num_hidden_layers=4)


def _randomise_time_embedding(model):
    with torch.no_grad():
        embedding = model.encoder.layer[0].time_embedding
        embedding.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
        embedding.bias.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))


def test_continuous_depth_has_one_layer_of_parameters():
    continuous = _model(**CONTINUOUS)
    one_layer = _model(ode_scope="layer", norm_position="pre", num_hidden_layers=1)
    four_layers = _model(ode_scope="layer", norm_position="pre", num_hidden_layers=4)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert len(continuous.encoder.layer) == 1
    assert count(continuous) - count(one_layer) == 33 * TINY["hidden_size"]  # the time embedding
    assert count(continuous) < count(four_layers)


def test_continuous_depth_runs_trains_and_is_time_conditioned():
    model = _model(**CONTINUOUS, ode_steps=2).train()
    ids, mask = _batch()
    out = model(ids, attention_mask=mask)
    assert out.nfe == 4 * 2 and len(out.solver_stats) == 1
    out.last_hidden_state.square().mean().backward()
    assert model.encoder.layer[0].time_embedding.weight.grad.abs().sum() > 0
    # With the zero-initialised time embedding, the field does not depend on t: euler over [0, 4] equals four
    # weight-tied pre-norm layers.
    model.eval()
    _randomise_time_embedding(model)
    with torch.no_grad():
        conditioned = model(ids, attention_mask=mask).last_hidden_state
        model.encoder.layer[0].time_embedding.weight.zero_()
        model.encoder.layer[0].time_embedding.bias.zero_()
        plain = model(ids, attention_mask=mask).last_hidden_state
    assert (conditioned - plain).abs().max() > 1e-3


@pytest.mark.parametrize("backend", [_backend_param("torchdiffeq"), _backend_param("torchode")])
def test_continuous_depth_time_matches_across_backends(backend):
    model = _model(**CONTINUOUS, ode_method="heun", ode_steps=1)
    _randomise_time_embedding(model)
    ids, mask = _batch()
    with torch.no_grad():
        native = model(ids, attention_mask=mask)
        model.config.ode_backend = backend  # torchode passes one time per sample, torchdiffeq a 0-d tensor
        other = model(ids, attention_mask=mask)
    torch.testing.assert_close(other.last_hidden_state, native.last_hidden_state, rtol=0, atol=1e-5)


def test_continuous_depth_adaptive_and_save_load(tmp_path):
    model = _model(**CONTINUOUS, ode_method="dopri5", ode_backend="torchdiffeq")
    _randomise_time_embedding(model)
    ids, mask = _batch()
    with torch.no_grad():
        out = model(ids, attention_mask=mask)
    assert out.nfe > 0 and out.solver_stats[0].steps >= 1
    model.save_pretrained(tmp_path)
    loaded = BertOdeModel.from_pretrained(tmp_path).eval()
    assert loaded.config.continuous_depth and len(loaded.encoder.layer) == 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, attention_mask=mask).last_hidden_state, out.last_hidden_state)
