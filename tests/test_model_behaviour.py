"""Model behaviour: padding invariance, nfe accounting, hidden states, a Trainer step, and input errors."""

from __future__ import annotations

import pytest
import torch
from conftest import random_batch, tiny_config_dict, tiny_ode_config
from transformers import BertConfig, BertModel, Trainer, TrainingArguments

import bert_ode

TOL = 1e-5

PADDING_CASES = {
    "rk4-sublayer-post-lie": dict(ode_method="rk4", ode_steps=2),
    "gated-layer-pre-lie": dict(ode_method="rk2-gated", ode_scope="layer", norm_position="pre"),
    "heun-sublayer-pre-strang": dict(ode_method="heun", norm_position="pre", splitting="strang"),
    "rk3-layer-post-strang": dict(ode_method="rk3", ode_scope="layer", splitting="strang"),
    "midpoint-sublayer-post-lie": dict(ode_method="midpoint", ode_steps=3),
    "euler-sublayer-pre-lie": dict(norm_position="pre"),
}


def _model(model_class=bert_ode.BertOdeModel, **overrides):
    torch.manual_seed(0)
    model = model_class(tiny_ode_config(initializer_range=0.1, **overrides)).eval()
    with torch.no_grad():  # learned gates away from Heun, so that they are exercised
        for name, parameter in model.named_parameters():
            if ".gate." in name:
                parameter.normal_(0.0, 0.3)
    return model


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("case", list(PADDING_CASES))
def test_padding_does_not_change_real_tokens(case, attn):
    model = _model(bert_ode.BertOdeForSequenceClassification, attn_implementation=attn, **PADDING_CASES[case])
    short = random_batch(batch=3, seq=6)
    extra = 4
    junk = torch.randint(1, 99, (3, extra), generator=torch.Generator().manual_seed(5))
    padded = {
        # Padded positions get arbitrary token ids: the mask alone must hide them.
        "input_ids": torch.cat([short["input_ids"], junk], 1),
        "attention_mask": torch.cat([short["attention_mask"], torch.zeros(3, extra, dtype=torch.long)], 1),
        "token_type_ids": torch.cat([short["token_type_ids"], torch.ones(3, extra, dtype=torch.long)], dim=1),
    }
    with torch.no_grad():
        a = model(**short, output_hidden_states=True)
        b = model(**padded, output_hidden_states=True)
    real = short["attention_mask"].bool()
    diff = (a.hidden_states[-1][real] - b.hidden_states[-1][:, :6][real]).abs().max().item()
    assert diff <= TOL, diff
    assert (a.logits - b.logits).abs().max().item() <= TOL  # pooled from [CLS], a real token
    assert a.nfe == b.nfe


@pytest.mark.parametrize("case", ["rk4-sublayer-post-lie", "gated-layer-pre-lie", "heun-sublayer-pre-strang"])
def test_batch_rows_are_independent(case):
    model = _model(**PADDING_CASES[case])
    batch = random_batch(batch=3, seq=7)
    with torch.no_grad():
        together = model(**batch).last_hidden_state
        for row in range(3):
            length = int(batch["attention_mask"][row].sum())
            single = {key: value[row : row + 1, :length] for key, value in batch.items()}
            alone = model(**single).last_hidden_state
            assert (alone[0] - together[row, :length]).abs().max().item() <= TOL


@pytest.mark.parametrize(
    "overrides, blocks_per_layer",
    [
        (dict(ode_scope="sublayer"), 2),
        (dict(ode_scope="sublayer", splitting="strang"), 3),
        (dict(ode_scope="layer"), 1),
        (dict(ode_scope="layer", splitting="strang", norm_position="pre"), 1),
    ],
)
@pytest.mark.parametrize("method, stages", [("rk4", 4), ("rk3", 3), ("rk2-gated", 2), ("euler", 1)])
def test_nfe_is_reported(method, stages, overrides, blocks_per_layer):
    model = _model(ode_method=method, ode_steps=2, **overrides)
    with torch.no_grad():
        out = model(**random_batch(batch=2, seq=5))
    layers, steps = model.config.num_hidden_layers, 2
    assert out.nfe == layers * blocks_per_layer * steps * stages
    assert len(out.solver_stats) == layers * blocks_per_layer
    for stats in out.solver_stats:
        assert (stats.nfe, stats.steps, stats.rejected) == (steps * stages, steps, 0)


def test_nfe_worked_example_from_the_brief():
    # rk4, sublayer scope, 2 steps, 2 layers: 2 layers * 2 blocks * 2 steps * 4 stages.
    assert _model(ode_method="rk4", ode_steps=2)(**random_batch()).nfe == 32


def test_nfe_counts_real_field_evaluations():
    # Count the attention calls directly: the reported nfe is what happened.
    model = _model(ode_method="rk3", ode_steps=2)
    calls = []
    for layer in model.encoder.layer:
        layer.attention.register_forward_hook(lambda *args: calls.append("attention"))
        layer.output.register_forward_hook(lambda *args: calls.append("ffn"))
    with torch.no_grad():
        out = model(**random_batch())
    assert len(calls) == out.nfe == 2 * 2 * 2 * 3
    assert calls.count("attention") == calls.count("ffn")


@pytest.mark.parametrize(
    "model_class",
    [
        bert_ode.BertOdeForMaskedLM,
        bert_ode.BertOdeForSequenceClassification,
        bert_ode.BertOdeForTokenClassification,
        bert_ode.BertOdeForQuestionAnswering,
    ],
)
def test_heads_report_nfe(model_class):
    model = _model(model_class, ode_method="heun", ode_steps=3, num_labels=2)
    with torch.no_grad():
        assert model(**random_batch()).nfe == 2 * 2 * 3 * 2


def test_multiple_choice_reports_nfe_and_shapes():
    model = _model(bert_ode.BertOdeForMultipleChoice, ode_method="midpoint")
    batch = random_batch(batch=2, seq=5)
    inputs = {key: value.unsqueeze(1).expand(-1, 3, -1) for key, value in batch.items()}  # three choices
    with torch.no_grad():
        out = model(**inputs, labels=torch.tensor([0, 2]))
    assert out.logits.shape == (2, 3)
    assert out.nfe == 2 * 2 * 1 * 2
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize(
    "overrides", [{}, dict(norm_position="pre", ode_method="rk4"), dict(ode_scope="layer")]
)
def test_hidden_states_are_embeddings_then_each_layer(overrides):
    model = _model(**overrides)
    batch = random_batch()
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
        assert len(out.hidden_states) == model.config.num_hidden_layers + 1
        embeddings = model.embeddings(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"])
        torch.testing.assert_close(out.hidden_states[0], embeddings, rtol=0, atol=1e-6)
        from transformers.masking_utils import create_bidirectional_mask

        mask = create_bidirectional_mask(
            config=model.config, inputs_embeds=embeddings, attention_mask=batch["attention_mask"]
        )
        h = embeddings
        for i, layer in enumerate(model.encoder.layer[:-1]):
            h, _ = layer(h, mask)
            torch.testing.assert_close(out.hidden_states[i + 1], h, rtol=0, atol=1e-6)
        torch.testing.assert_close(out.hidden_states[-1], out.last_hidden_state, rtol=0, atol=0)


def test_attentions_match_bert_for_the_default_config(tmp_path):
    # With the defaults, output_attentions gives BERT's attention maps, one per layer.
    torch.manual_seed(0)
    bert = BertModel(BertConfig(**tiny_config_dict(initializer_range=0.1))).eval()
    bert.config._attn_implementation = "eager"
    converted = bert_ode.BertOdeModel.from_bert(bert, attn_implementation="eager").eval()
    batch = random_batch()
    with torch.no_grad():
        expected = bert(**batch, output_attentions=True).attentions
        actual = converted(**batch, output_attentions=True).attentions
    assert len(actual) == len(expected) == 2
    for a, b in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=TOL)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(ode_method="heun"),
        dict(ode_method="rk4", ode_steps=2),
        dict(ode_method="rk2-gated", ode_scope="layer", norm_position="pre"),
        dict(ode_method="heun", splitting="strang", norm_position="pre"),
    ],
    ids=lambda overrides: "-".join(str(v) for v in overrides.values()),
)
def test_attentions_are_one_map_per_layer_the_first_evaluations(overrides):
    # transformers' convention: exactly num_hidden_layers maps, however many evaluations a scheme takes. Each
    # is the layer's first evaluation, at the block's input: for layer 0 (same input), the Euler model's map.
    model = _model(attn_implementation="eager", **overrides)
    batch = random_batch()
    with torch.no_grad():
        out = model(**batch, output_attentions=True)
        model.config.ode_method, model.config.ode_steps = "euler", 1
        euler = model(**batch, output_attentions=True) if "gated" not in str(overrides) else None
    assert len(out.attentions) == model.config.num_hidden_layers == 2
    assert out.nfe >= 2 * model.config.num_hidden_layers  # several evaluations per layer
    heads, seq = model.config.num_attention_heads, batch["input_ids"].shape[1]
    assert all(a.shape == (3, heads, seq, seq) for a in out.attentions)
    torch.testing.assert_close(out.attentions[0].sum(-1), torch.ones(3, heads, seq), rtol=0, atol=1e-5)
    if euler is not None and overrides.get("splitting") != "strang":  # Strang's first half step moves y first
        torch.testing.assert_close(out.attentions[0], euler.attentions[0], rtol=0, atol=1e-6)


def test_set_attn_implementation_switches_and_keeps_the_outputs():
    model = _model(ode_method="heun", attn_implementation="sdpa")
    batch = random_batch()
    with torch.no_grad():
        sdpa = model(**batch).last_hidden_state
        model.set_attn_implementation("eager")
        assert model.config._attn_implementation == "eager"
        eager = model(**batch, output_attentions=True)
        model.set_attn_implementation("sdpa")
        assert model.config._attn_implementation == "sdpa"
    torch.testing.assert_close(eager.last_hidden_state, sdpa, rtol=0, atol=1e-5)
    assert len(eager.attentions) == 2 and all(a is not None for a in eager.attentions)


def test_too_long_sequence_is_a_clear_error():
    model = _model(max_position_embeddings=16)
    ids = torch.randint(1, 99, (1, 17))
    with pytest.raises(ValueError, match="max_position_embeddings=16") as excinfo:
        model(input_ids=ids)
    assert "17" in str(excinfo.value)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(inputs_embeds=torch.randn(1, 17, 32))
    model(input_ids=ids[:, :16])  # the longest allowed length works


def test_exactly_one_of_input_ids_and_inputs_embeds():
    model = _model()
    ids = torch.randint(1, 99, (1, 4))
    with pytest.raises(ValueError, match="exactly one"):
        model()
    with pytest.raises(ValueError, match="exactly one"):
        model(input_ids=ids, inputs_embeds=torch.randn(1, 4, 32))


def test_inputs_embeds_equals_input_ids_path():
    model = _model(ode_method="rk3")
    batch = random_batch()
    with torch.no_grad():
        embeds = model.embeddings.word_embeddings(batch["input_ids"])
        a = model(**batch).last_hidden_state
        b = model(
            inputs_embeds=embeds,
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
        ).last_hidden_state
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_eval_mode_is_deterministic_and_train_mode_uses_dropout():
    model = _model(ode_method="heun", hidden_dropout_prob=0.3)
    batch = random_batch()
    with torch.no_grad():
        assert torch.equal(model(**batch).last_hidden_state, model(**batch).last_hidden_state)
        model.train()
        assert not torch.equal(model(**batch).last_hidden_state, model(**batch).last_hidden_state)


@pytest.mark.parametrize("scope", ["sublayer", "layer"])
def test_fresh_gated_model_starts_as_heun(scope):
    # The learned RK2 gates start at zero (gamma = 1/2), so a new rk2-gated model computes Heun's method.
    # (Catches a gate left to nn.Linear's random initialisation: rk2-gated is then first order at init.)
    torch.manual_seed(0)
    config = tiny_ode_config(ode_method="rk2-gated", ode_scope=scope, initializer_range=0.1)
    gated = bert_ode.BertOdeModel(config)
    gates = {name: p for name, p in gated.named_parameters() if ".gate." in name}
    assert len(gates) == 2 * gated.config.num_hidden_layers * (2 if scope == "sublayer" else 1)
    for name, parameter in gates.items():
        assert torch.count_nonzero(parameter) == 0, name
    heun = bert_ode.BertOdeModel(tiny_ode_config(ode_method="heun", ode_scope=scope, initializer_range=0.1))
    heun.load_state_dict({k: v for k, v in gated.state_dict().items() if ".gate." not in k})
    batch = random_batch()
    with torch.no_grad():
        a = gated.eval()(**batch).last_hidden_state
        b = heun.eval()(**batch).last_hidden_state
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


# --- one Trainer step ---------------------------------------------------------------------------------------


class _TinyDataset(torch.utils.data.Dataset):
    def __init__(self, size=8, seq=6):
        batch = random_batch(batch=size, seq=seq, seed=3, pad_rows=False)
        batch["attention_mask"][size // 2 :, seq - 2 :] = 0  # half the rows padded
        self.rows = [
            {
                "input_ids": batch["input_ids"][i],
                "attention_mask": batch["attention_mask"][i],
                "labels": torch.tensor(i % 2),
            }
            for i in range(size)
        ]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]


def test_trainer_step_and_predict(tmp_path):
    model = bert_ode.BertOdeForSequenceClassification(tiny_ode_config(ode_method="rk2-gated", num_labels=2))
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        learning_rate=1e-2,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    dataset = _TinyDataset()
    trainer = Trainer(model=model, args=args, train_dataset=dataset, eval_dataset=dataset)
    result = trainer.train()
    assert result.global_step == 2 and result.training_loss > 0
    changed = {name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])}
    assert "classifier.weight" in changed
    assert "bert.encoder.layer.0.attention.self.query.weight" in changed
    assert any(".gate." in name for name in changed)  # the learned gates train too

    prediction = trainer.predict(dataset)
    # Predictions are the logits alone, not a tuple polluted by nfe / solver_stats.
    assert not isinstance(prediction.predictions, tuple)
    assert prediction.predictions.shape == (len(dataset), 2)
    model.eval()
    with torch.no_grad():
        expected = model(
            input_ids=torch.stack([row["input_ids"] for row in dataset.rows]),
            attention_mask=torch.stack([row["attention_mask"] for row in dataset.rows]),
        ).logits
    torch.testing.assert_close(torch.as_tensor(prediction.predictions), expected, rtol=1e-5, atol=1e-5)
    assert prediction.metrics["test_loss"] > 0
