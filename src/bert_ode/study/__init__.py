"""The study (``bert-ode compare``): does ODE-BERT beat BERT? Not training code: it runs the pretraining and
fine-tuning wings as units and reads their records.

``config`` (``StudyConfig``: the recipe resolved once into typed configs, variants, seeds, budgets),
``runner`` (the units, FLOP counts, resume by record file), ``cooldowns`` (a warmup-stable-decay
study's units), ``compare`` (run, then report), ``records`` (per-unit records and
summaries), ``statistics`` (over seeds, paired differences, scaling), ``verdicts``, ``scaling``,
``baselines`` (majority and TF-IDF), ``report`` / ``report_markdown`` / ``plots`` (the report on disk);
for a ``cooldowns`` study ``escape`` (escape times, multipliers, gaps), ``delay`` (delay and efficiency),
``small_sample`` (exact tests, t intervals, TOST, censored means) and ``cooldown_report`` with its sections.
"""

from .compare import compare
from .config import Equivalence, StudyConfig, Variant, WarmStart, load_study
from .cooldowns import CooldownStudy
from .report import write_report
from .runner import Study

__all__ = [
    "CooldownStudy",
    "Equivalence",
    "Study",
    "StudyConfig",
    "Variant",
    "WarmStart",
    "compare",
    "load_study",
    "write_report",
]
