"""Any-to-any retrieval over BEIR-style datasets, scored as mteb scores it.

Reads the layouts MIEB's retrieval datasets use on the hub: configs ``corpus``, ``queries`` (or
``query``) and ``qrels`` (or ``default``); columns ``id``/``_id``, ``text``, ``image``,
``modality``, and ``query-id``, ``corpus-id``, ``score``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import datasets
import numpy as np

from harness.encoding import Encoder
from harness.items import EncodedImage, RawItem
from harness.scoring.retrieval import (
    DEFAULT_K_VALUES,
    drop_queries_without_positives,
    retrieval_scores,
)
from harness.scoring.search import run_from_top_k, top_k_search
from tasks.base import Protocol, SplitOutcome, TaskType
from tasks.definition import TaskDefinition
from tasks.loading import column, load_part, require_columns, resolve_config, undecoded_images

CONFIG_CANDIDATES = {
    "corpus": ("corpus",),
    "queries": ("queries", "query"),
    "qrels": ("qrels", "default"),
}
Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]


@dataclass
class RetrievalSplit:
    """One split ready to encode: queries with positives, the corpus, and the queries' qrels."""

    queries: list[RawItem]
    corpus: list[RawItem]
    qrels: Qrels


@dataclass(frozen=True)
class Encodings:
    """The ids and vectors of the items the encoder kept, row for row."""

    ids: list[str]
    vectors: np.ndarray


class RetrievalProtocol(Protocol):
    """mteb's retrieval constants."""

    k_values: tuple[int, ...] = DEFAULT_K_VALUES
    skip_first_result: bool = False
    ignore_identical_ids: bool = False


class Retrieval(TaskType):
    """Queries retrieve documents; nDCG, MAP, recall, precision, MRR and hit rate at k."""

    name = "retrieval"
    default_main_score = "ndcg_at_10"
    protocol_model = RetrievalProtocol

    def evaluate(
        self, task: TaskDefinition, encoder: Encoder, *, split: str, limit: int | None = None
    ) -> SplitOutcome:
        """Encode queries and corpus, rank documents for every query, score with pytrec_eval."""
        protocol = self.protocol(task)
        assert isinstance(protocol, RetrievalProtocol)
        data = self._load_split(task, protocol, split, limit)
        encoded_queries = encoder.encode(
            data.queries, role="query", instruction=task.prompts.query, task=task.name
        )
        encoded_corpus = encoder.encode(
            data.corpus, role="document", instruction=task.prompts.document, task=task.name
        )
        query_ids = _kept_ids(data.queries, encoded_queries.kept)
        corpus_ids = _kept_ids(data.corpus, encoded_corpus.kept)
        run = self._search(
            data,
            protocol,
            encoder,
            Encodings(query_ids, encoded_queries.vectors[encoded_queries.kept]),
            Encodings(corpus_ids, encoded_corpus.vectors[encoded_corpus.kept]),
        )
        result = retrieval_scores(
            {qid: data.qrels[qid] for qid in query_ids},
            run,
            protocol.k_values,
            skip_first_result=protocol.skip_first_result,
            ignore_identical_ids=protocol.ignore_identical_ids,
        )
        skipped = [*encoded_queries.skipped, *encoded_corpus.skipped]
        return SplitOutcome([self.subset_scores(task, result.metrics)], skipped)

    def _load_split(
        self, task: TaskDefinition, protocol: RetrievalProtocol, split: str, limit: int | None
    ) -> RetrievalSplit:
        """Queries with positives, the corpus, and their qrels (a subclass may add more)."""
        qrels = drop_queries_without_positives(self._qrels(task, split))
        queries = [q for q in self._items(task, "queries", split) if q.id in qrels]
        corpus = self._items(task, "corpus", split)
        if limit is not None:
            queries, corpus = _limit(queries, corpus, qrels, limit)
        return RetrievalSplit(queries, corpus, {query.id: qrels[query.id] for query in queries})

    def _search(
        self,
        data: RetrievalSplit,
        protocol: RetrievalProtocol,
        encoder: Encoder,
        queries: Encodings,
        corpus: Encodings,
    ) -> Run:
        """The run: every query's top max(k) documents of the whole corpus."""
        scores, indices = top_k_search(
            queries.vectors,
            corpus.vectors,
            max(protocol.k_values),
            similarity=encoder.adapter.meta.similarity,
            device=encoder.device,
        )
        return run_from_top_k(queries.ids, corpus.ids, scores, indices)

    def _qrels(self, task: TaskDefinition, split: str) -> Qrels:
        config = resolve_config(task, "qrels", CONFIG_CANDIDATES["qrels"])
        data = load_part(task, "qrels", config, split)
        names = [column(task, name) for name in ("query-id", "corpus-id", "score")]
        require_columns(task, data, config, names)
        qrels: Qrels = {}
        for query_id, doc_id, score in zip(*(data[name] for name in names), strict=True):
            qrels.setdefault(str(query_id), {})[str(doc_id)] = int(score)
        return qrels

    def _items(self, task: TaskDefinition, part: str, split: str) -> list[RawItem]:
        config = resolve_config(task, part, CONFIG_CANDIDATES[part])
        data = load_part(task, part, config, split)
        id_column = column(task, "id")
        if id_column not in data.column_names and "_id" in data.column_names:
            id_column = "_id"
        side = task.query_modality if part == "queries" else task.document_modality
        content = [column(task, "text") if "t" in side else None]
        content.append(column(task, "image") if "i" in side else None)
        require_columns(task, data, config, [id_column, *(c for c in content if c)])
        if content[1]:
            data = undecoded_images(data, content[1])
        return list(_raw_items(data, id_column, content[0], content[1], column(task, "title")))


def _raw_items(
    data: datasets.Dataset,
    id_column: str,
    text_column: str | None,
    image_column: str | None,
    title_column: str,
) -> Iterable[RawItem]:
    """Rows as raw items; a ``modality`` column, where present, says which fields an item has."""
    has_modality = "modality" in data.column_names
    has_title = text_column is not None and title_column in data.column_names
    for row in data:
        modality = row["modality"] if has_modality else "image,text"
        text = row[text_column] if text_column and "text" in modality else None
        if text is not None and has_title and row[title_column]:
            text = f"{row[title_column]} {text}".strip()
        image = row[image_column] if image_column and "image" in modality else None
        yield RawItem(
            id=str(row[id_column]),
            text=text if text else None,
            image=EncodedImage.from_value(image) if image is not None else None,
        )


def _limit(
    queries: list[RawItem],
    corpus: list[RawItem],
    qrels: Mapping[str, Mapping[str, int]],
    limit: int,
) -> tuple[list[RawItem], list[RawItem]]:
    """The first ``limit`` queries, and a corpus of their relevant documents plus ``limit`` more."""
    queries = queries[:limit]
    relevant = {doc for query in queries for doc in qrels[query.id]}
    extra = {doc.id for doc in corpus[:limit]}
    return queries, [doc for doc in corpus if doc.id in relevant or doc.id in extra]


def _kept_ids(items: list[RawItem], kept: np.ndarray) -> list[str]:
    return [item.id for item, keep in zip(items, kept, strict=True) if keep]
