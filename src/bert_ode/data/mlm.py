"""Masked-LM data: sequence packing into fixed blocks and dynamic masking (80/10/10, optionally whole
words)."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase


def pack_sequences(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], seq_len: int, batch_size: int = 256
) -> torch.Tensor:
    """Tokenises ``texts`` and packs them into ``(num_blocks, seq_len)`` blocks ``[CLS] tokens... [SEP]``.

    Texts are concatenated with ``[SEP]`` between them, so no position is padding and every block is full; the
    tail shorter than a block is dropped.
    """
    if seq_len < 3:
        raise ValueError(f"data.seq_len={seq_len} is too short; a block needs [CLS], a token and [SEP]")
    # A private copy of the Rust tokenizer without the checkpoint's truncation/padding settings.
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()
    sep = tokenizer.sep_token_id
    stream: list[int] = []
    for start in range(0, len(texts), batch_size):
        for encoding in backend.encode_batch(texts[start : start + batch_size], add_special_tokens=False):
            stream.extend(encoding.ids)
            stream.append(sep)
    body = seq_len - 2
    num_blocks = len(stream) // body
    tokens = torch.tensor(stream[: num_blocks * body], dtype=torch.long).view(num_blocks, body)
    cls_column = torch.full((num_blocks, 1), tokenizer.cls_token_id, dtype=torch.long)
    sep_column = torch.full((num_blocks, 1), sep, dtype=torch.long)
    return torch.cat([cls_column, tokens, sep_column], dim=1)


def unigram_entropy(
    blocks: torch.Tensor, special: torch.Tensor, reference: torch.Tensor | None = None
) -> float:
    """The MLM loss, in nats, of a model that knows only word frequencies, over the positions masking can
    choose (``special[id]`` False) in ``blocks``.

    Without ``reference``: the entropy of ``blocks``' own token distribution. With ``reference`` (the training
    blocks): the cross-entropy of ``blocks`` under the reference's frequencies (add-one smoothed, so a token
    unseen there costs a finite amount), i.e. the loss a model that learned word frequencies from the training
    data scores on ``blocks``. A masked position's label is drawn from exactly this distribution (token-level
    masking picks positions uniformly); a model whose validation loss is not clearly below this number has
    learned word frequencies, not language.
    """
    counts = _maskable_counts(blocks, special)
    if counts.sum() == 0:
        raise ValueError("no maskable token in the blocks: the unigram entropy is undefined")
    probabilities = counts / counts.sum()
    if reference is None:
        present = probabilities > 0
        return float(-(probabilities[present] * probabilities[present].log()).sum())
    maskable = ~special
    smoothed = (_maskable_counts(reference, special) + 1.0) * maskable  # add-one over maskable tokens only
    log_model = (smoothed / smoothed.sum()).clamp_min(1e-300).log()
    return float(-(probabilities[maskable] * log_model[maskable]).sum())


def _maskable_counts(blocks: torch.Tensor, special: torch.Tensor) -> torch.Tensor:
    tokens = blocks.reshape(-1)
    tokens = tokens[~special[tokens]]
    return torch.bincount(tokens, minlength=len(special)).to(torch.float64)


class MlmMasker:
    """Dynamic masking of packed blocks: a fresh mask every time a block is seen.

    ``mlm_probability`` of the non-special tokens (or of the words, with ``whole_word_mask``) are selected; of
    those 80% become ``[MASK]``, 10% a random token and 10% stay. Labels are the original ids at selected
    positions and -100 elsewhere. Token-level masking is transformers' ``DataCollatorForLanguageModeling``;
    whole-word masking selects words (a token plus its ``##`` continuations) and hands the choice to the same
    80/10/10 rule. All randomness comes from the ``generator`` passed in, so a batch is a pure function of its
    seed.
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, mlm_probability: float = 0.15, whole_word_mask: bool = False
    ):
        if not 0 < mlm_probability < 1:
            raise ValueError(f"data.mlm_probability={mlm_probability} must be in (0, 1)")
        self.tokenizer = tokenizer
        self.mlm_probability = mlm_probability
        self.whole_word_mask = whole_word_mask
        self.collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability)
        vocab_size = len(tokenizer)
        self.special = torch.zeros(vocab_size, dtype=torch.bool)
        self.special[torch.tensor(tokenizer.all_special_ids, dtype=torch.long)] = True
        self.continuation = torch.zeros(vocab_size, dtype=torch.bool)
        for token, index in tokenizer.get_vocab().items():
            if token.startswith("##"):
                self.continuation[index] = True

    def __call__(self, input_ids: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        inputs = input_ids.clone()
        special = self.special[inputs]
        self.collator.generator = generator
        if not self.whole_word_mask:
            inputs, labels = self.collator.torch_mask_tokens(inputs, special_tokens_mask=special)
            return {"input_ids": inputs, "labels": labels}
        selected = self.select_whole_words(inputs, special, generator)
        return self._replace(inputs, selected, generator)

    def select_whole_words(
        self, inputs: torch.Tensor, special: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        # A word starts at every non-continuation token; each position looks up the choice made at its word's
        # start.
        starts = ~self.continuation[inputs] | special
        chosen_at_start = (
            (torch.rand(inputs.shape, generator=generator) < self.mlm_probability) & starts & ~special
        )
        positions = torch.arange(inputs.shape[1]).expand_as(inputs)
        start_of_word = torch.where(starts, positions, 0).cummax(dim=1).values  # (batch, seq)
        return chosen_at_start.gather(1, start_of_word) & ~special

    def _replace(self, inputs: torch.Tensor, selected: torch.Tensor, generator: torch.Generator):
        labels = inputs.masked_fill(~selected, -100)
        replace = (torch.rand(inputs.shape, generator=generator) < 0.8) & selected
        randomise = (torch.rand(inputs.shape, generator=generator) < 0.5) & selected & ~replace
        inputs = inputs.masked_fill(replace, self.tokenizer.mask_token_id)
        random_ids = torch.randint(len(self.tokenizer), inputs.shape, generator=generator)
        inputs = torch.where(randomise, random_ids, inputs)
        return {"input_ids": inputs, "labels": labels}
