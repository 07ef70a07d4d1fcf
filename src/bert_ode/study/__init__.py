"""The study (``bert-ode compare``): does ODE-BERT beat BERT? Not training code: it runs the pretraining and
fine-tuning wings as units and reads their records.

``config`` (``StudyConfig``: the recipe resolved once into typed configs, variants, seeds, budgets),
``runner`` (``compare``: the units, FLOP counts, resume by record file), ``records`` (per-unit records and
summaries), ``statistics`` (over seeds, paired differences, scaling), ``verdicts``, ``scaling``,
``baselines`` (majority and TF-IDF), ``report`` / ``report_markdown`` / ``plots`` (the report on disk).
"""

from .config import StudyConfig, Variant, WarmStart, load_study
from .report import write_report
from .runner import Study, compare

__all__ = ["Study", "StudyConfig", "Variant", "WarmStart", "compare", "load_study", "write_report"]
