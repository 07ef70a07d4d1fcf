"""What a pretraining run reports: a window of recent steps, and the CSV / TensorBoard log."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch

CSV_FIELDS = ["step", "tokens", "elapsed_s", "lr", "train_loss", "val_loss", "val_ppl", "tokens_per_s", "nfe"]


@dataclass
class MetricsWindow:
    """Training loss and speed over the optimizer steps since the last log line."""

    loss_sum: float | torch.Tensor = 0.0  # a tensor until read: adding steps' losses needs no host sync
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def add(self, loss: float | torch.Tensor, tokens: int, seconds: float) -> None:
        self.loss_sum += loss
        self.steps += 1
        self.tokens += tokens
        self.seconds += seconds

    @property
    def mean_loss(self) -> float:
        return float(self.loss_sum) / self.steps if self.steps else float("nan")

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)


class RunLogger:
    """CSV (always), TensorBoard and accelerate's trackers on the main process; rows past a resumed step are
    dropped."""

    def __init__(
        self, output_dir: Path, start_step: int, enabled: bool, tensorboard: bool = True, accelerator=None
    ):
        self.enabled = enabled
        self.accelerator = accelerator  # with trackers (train.report_to) to log to, else None
        if not enabled:
            return
        self.path = output_dir / "log.csv"
        rows = self._rows_up_to(start_step) if start_step > 0 else []
        self.handle = open(self.path, "w", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.handle, fieldnames=CSV_FIELDS)
        self.writer.writeheader()
        self.writer.writerows(rows)
        self.handle.flush()
        self.tensorboard = (
            _tensorboard_writer(output_dir / "tensorboard", start_step) if tensorboard else None
        )

    def _rows_up_to(self, step: int) -> list[dict]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="", encoding="utf-8") as handle:
            return [row for row in csv.DictReader(handle) if int(row["step"]) <= step]

    def log(self, row: dict) -> None:
        if not self.enabled:
            return
        self.writer.writerow({k: row.get(k, "") for k in CSV_FIELDS})
        self.handle.flush()
        values = {f"pretrain/{k}": v for k, v in row.items() if k != "step" and v not in ("", None)}
        if self.tensorboard is not None:
            for key, value in values.items():
                self.tensorboard.add_scalar(key, value, row["step"])
        if self.accelerator is not None:
            self.accelerator.log(values, step=row["step"])

    def close(self) -> None:
        if self.enabled:
            self.handle.close()
            if self.tensorboard is not None:
                self.tensorboard.close()
        if self.accelerator is not None:
            self.accelerator.end_training()


def _tensorboard_writer(folder: Path, start_step: int):
    """A TensorBoard writer, or None where tensorboard is not installed (it is optional: the CSV log is the
    record)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder), purge_step=start_step or None)
