"""The native fixed-step path is one graph for torch.compile: no graph breaks, fullgraph, eager outputs."""

from __future__ import annotations

import pytest
import torch

import bert_ode

CASES = {
    "heun": {"ode_method": "heun"},
    "rk2-gated-strang-pre-norm-2-steps": {
        "ode_method": "rk2-gated",
        "splitting": "strang",
        "norm_position": "pre",
        "ode_steps": 2,
    },
    # issue 36: the all-history multistep (its history across layers and steps) with a learned step size
    "ab-learned-learned-step-per-channel-2-steps": {
        "ode_method": "ab-learned",
        "ode_learned_step": "channel",
        "ode_steps": 2,
    },
    "rk4-learned-step-restarted-history": {
        "ode_method": "rk4",
        "ode_learned_step": "block",
        "ode_history": "restart",
    },
    "ab3-restart": {"ode_method": "ab3", "ode_history": "restart", "ode_steps": 3},
}


def _model(**overrides) -> bert_ode.BertOdeModel:
    config = bert_ode.BertOdeConfig(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=38,
        **overrides,
    )
    torch.manual_seed(0)
    return bert_ode.BertOdeModel(config).eval()


@pytest.mark.parametrize("case", list(CASES))
def test_fixed_step_model_compiles_as_one_graph(case):
    model = _model(**CASES[case])
    input_ids = torch.randint(0, 99, (2, 16), generator=torch.Generator().manual_seed(0))
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(input_ids=input_ids)
    assert explanation.graph_break_count == 0, [r.reason for r in explanation.break_reasons]
    assert explanation.graph_count == 1
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        expected = model(input_ids=input_ids).last_hidden_state
        actual = compiled(input_ids=input_ids).last_hidden_state
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", list(CASES))
def test_fixed_step_model_exports_and_matches_eager(case):
    model = _model(**CASES[case])
    input_ids = torch.randint(0, 99, (2, 16), generator=torch.Generator().manual_seed(0))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 12:] = 0
    exported = torch.export.export(model, args=(input_ids,), kwargs={"attention_mask": attention_mask})
    with torch.no_grad():
        expected = model(input_ids=input_ids, attention_mask=attention_mask)
        actual = exported.module()(input_ids, attention_mask=attention_mask)
    torch.testing.assert_close(actual.last_hidden_state, expected.last_hidden_state, rtol=1e-5, atol=1e-5)
    assert actual.nfe == expected.nfe and len(actual.solver_stats) == len(expected.solver_stats)
    assert actual.solver_stats[0].nfe == expected.solver_stats[0].nfe
