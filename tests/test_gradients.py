"""float64 gradcheck through every scheme: through integrate_fixed and through a tiny BertOde model."""

from __future__ import annotations

import pytest
import torch
from conftest import METHODS
from torch.autograd import gradcheck
from torch.func import functional_call

import bert_ode
from bert_ode import TABLEAUX
from bert_ode.integrators import integrate_fixed

F64 = torch.float64


@pytest.mark.parametrize("method", METHODS)
def test_gradcheck_integrate_fixed(method):
    tableau = TABLEAUX[method]
    generator = torch.Generator().manual_seed(0)
    y0 = torch.randn(2, 3, dtype=F64, generator=generator, requires_grad=True)
    weight = (0.5 * torch.randn(3, 3, dtype=F64, generator=generator)).requires_grad_()

    def solve(y0, weight):
        # Nonlinear and time-dependent, so every stage's input and time matter.
        field = lambda t, y: torch.tanh(y @ weight) * (1.0 + t)  # noqa: E731
        return integrate_fixed(field, y0, 0.0, 1.0, 3, tableau)[0]

    assert gradcheck(solve, (y0, weight), eps=1e-6, atol=1e-8)


def test_gradcheck_learned_stage_weights():
    # The gated RK2's weights are tensors computed from the stages; gradients flow into what computes them.
    generator = torch.Generator().manual_seed(1)
    y0 = torch.randn(2, 3, dtype=F64, generator=generator, requires_grad=True)
    gate = torch.randn(6, 1, dtype=F64, generator=generator, requires_grad=True)

    def solve(y0, gate):
        def weights(stages):
            gamma = torch.sigmoid(torch.cat(stages, dim=-1) @ gate)
            return gamma, 1.0 - gamma

        field = lambda t, y: torch.sin(y) - 0.3 * y  # noqa: E731
        return integrate_fixed(field, y0, 0.0, 1.0, 2, TABLEAUX["rk2-gated"], weights)[0]

    assert gradcheck(solve, (y0, gate), eps=1e-6, atol=1e-8)


def _micro_model(**overrides) -> bert_ode.BertOdeModel:
    config = bert_ode.BertOdeConfig(
        vocab_size=11,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=overrides.pop("intermediate_size", 6),
        max_position_embeddings=8,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=0.3,
        attn_implementation="eager",
        **overrides,
    )
    torch.manual_seed(0)
    return bert_ode.BertOdeModel(config, add_pooling_layer=False).to(F64).eval()


def _embeds():
    return torch.randn(1, 3, 8, dtype=F64, generator=torch.Generator().manual_seed(2), requires_grad=True)


@pytest.mark.parametrize("method", METHODS)
def test_gradcheck_bert_ode_model_wrt_inputs_embeds(method):
    model = _micro_model(ode_method=method, ode_steps=2)
    mask = torch.tensor([[1, 1, 0]])  # padding must not break differentiability

    def forward(inputs_embeds):
        return model(inputs_embeds=inputs_embeds, attention_mask=mask).last_hidden_state

    assert gradcheck(forward, (_embeds(),), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(norm_position="pre"),
        dict(ode_scope="layer"),
        dict(ode_scope="layer", norm_position="pre"),
        dict(splitting="strang"),
    ],
    ids=lambda o: "-".join(f"{v}" for v in o.values()),
)
def test_gradcheck_bert_ode_variants(overrides):
    model = _micro_model(ode_method="rk4", ode_steps=1, **overrides)

    def forward(inputs_embeds):
        return model(inputs_embeds=inputs_embeds).last_hidden_state

    assert gradcheck(forward, (_embeds(),), eps=1e-6, atol=1e-7)


def _gate_names(model):
    return [name for name, _ in model.named_parameters() if ".gate." in name]


def test_gradcheck_through_gate_parameters():
    model = _micro_model(ode_method="rk2-gated", ode_steps=2)
    names = _gate_names(model)
    assert len(names) == 4  # weight and bias of the attention and feed-forward blocks
    generator = torch.Generator().manual_seed(3)
    shapes = {name: parameter.shape for name, parameter in model.named_parameters()}
    gates = [0.5 * torch.randn(shapes[name], dtype=F64, generator=generator) for name in names]
    gates = [gate.requires_grad_() for gate in gates]

    def forward(inputs_embeds, *gate_values):
        parameters = dict(zip(names, gate_values, strict=True))
        outputs = functional_call(model, parameters, kwargs={"inputs_embeds": inputs_embeds})
        return outputs.last_hidden_state

    assert gradcheck(forward, (_embeds(), *gates), eps=1e-6, atol=1e-7)


def test_gate_parameters_receive_nonzero_gradients():
    model = _micro_model(ode_method="rk2-gated", ode_steps=2)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".gate." in name:
                parameter.normal_(0.0, 0.5)
    model(inputs_embeds=_embeds()).last_hidden_state.pow(2).sum().backward()
    for name, parameter in model.named_parameters():
        if ".gate." in name:
            assert parameter.grad is not None, name
            assert parameter.grad.abs().max() > 0, name


def test_gate_gradient_at_initialisation_is_nonzero():
    # At gamma = 1/2 the gate still learns: d/db of gamma k1 + (1 - gamma) k2 is sigma' (k1 - k2) != 0.
    model = _micro_model(ode_method="rk2-gated", ode_steps=1)
    model(inputs_embeds=_embeds()).last_hidden_state.pow(2).sum().backward()
    for name, parameter in model.named_parameters():
        if name.endswith("gate.bias"):
            assert parameter.grad.abs().max() > 0, name


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_parameter_gradients_match_finite_differences(method):
    # A parameter shared by all stages (the attention query weight) gets the right gradient.
    model = _micro_model(ode_method=method, ode_steps=2)
    name = "encoder.layer.0.attention.self.query.weight"
    weight = dict(model.named_parameters())[name].detach().clone().requires_grad_()
    embeds = _embeds().detach()

    def forward(query_weight):
        outputs = functional_call(model, {name: query_weight}, kwargs={"inputs_embeds": embeds})
        return outputs.last_hidden_state

    assert gradcheck(forward, (weight,), eps=1e-6, atol=1e-7)
