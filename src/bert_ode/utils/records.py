"""Typed result records: dataclasses that write themselves as JSON and read themselves back.

Results (a fine-tuning run, a study unit, a summary) are dataclasses whose fields are the schema, instead of
nested dicts whose shape lives in the code that reads them. Like transformers' ``ModelOutput`` they can also
be indexed by field name (``result["runs"][0]["test"]``), which keeps scripts written against the JSON files
working unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from .config_io import from_dict, to_dict


class Record:
    """Base of every result dataclass: ``to_dict`` / ``from_dict`` / ``write_json`` / ``read_json``,
    ``record[name]``."""

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, values: dict):
        return from_dict(cls, values, cls.__name__)

    def write_json(self, path: str | os.PathLike) -> Path:
        """Writes atomically: a reader (a resumed study) sees the whole record or none."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.tmp{os.getpid()}")
        staging.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        os.replace(staging, path)
        return path

    @classmethod
    def read_json(cls, path: str | os.PathLike):
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def __getitem__(self, name: str):
        if name not in {f.name for f in dataclasses.fields(self)}:
            raise KeyError(name)
        return getattr(self, name)

    def __contains__(self, name: str) -> bool:
        return name in {f.name for f in dataclasses.fields(self)}
