"""The pretraining objective: masked-LM cross-entropy computed on the masked positions only."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling_bert_ode import BertOdeForMaskedLM


class SparseMlmLoss(nn.Module):
    """Encoder on all positions, MLM head and cross-entropy on the masked positions only.

    Most of the positions never need the ``hidden x vocab`` projection; skipping them is the largest saving of
    CPU pretraining. It wraps the model so DDP sees one forward and synchronises every gradient.
    Returns ``(loss summed over masked tokens, number of masked tokens, function evaluations)``.
    """

    def __init__(self, model: BertOdeForMaskedLM):
        super().__init__()
        self.model = model
        # Set by compile_encoder(): a compiled function, not a module, so no parameter is registered twice.
        self.compiled_encoder = None

    def compile_encoder(self, enabled: bool = True) -> None:
        """Runs the encoder through ``torch.compile`` (or back to eager). The model's parameters and
        state_dict keys are untouched."""
        self.compiled_encoder = torch.compile(self.model.bert.forward) if enabled else None

    def encode(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The encoder's last hidden state, ``(batch, seq, hidden)``."""
        return self._encoder_outputs(input_ids).last_hidden_state

    def _encoder_outputs(self, input_ids: torch.Tensor):
        encoder = self.compiled_encoder if self.compiled_encoder is not None else self.model.bert
        return encoder(input_ids=input_ids)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor):
        outputs = self._encoder_outputs(input_ids)
        masked = labels != -100  # (batch, seq)
        hidden = outputs.last_hidden_state[masked]  # (n_masked, hidden)
        logits = self.model.cls(hidden)  # (n_masked, vocab)
        loss_sum = F.cross_entropy(logits.float(), labels[masked], reduction="sum")
        return loss_sum, masked.sum(), outputs.nfe
