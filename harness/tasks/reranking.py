"""Reranking (mteb's ``AbsTaskRetrieval`` with a ``top_ranked`` list; MAEB's AudioReranking).

The layout of retrieval (``harness/tasks/retrieval.py``: configs ``corpus``, ``queries``, ``qrels``)
plus a config ``top_ranked`` with columns ``query-id`` and ``corpus-ids`` (the candidate
documents of each query, a list). Each query is scored against its own candidates only, by the
model's similarity, and its run (the best ``max(k_values)`` candidates) is scored as retrieval
scores it: nDCG, MAP, recall, precision, MRR and hit rate at each k; MAEB's
GTZANAudioReranking reports ``map_at_1000``. See ``harness.scoring.candidates``.

Only the candidates are encoded (mteb encodes the whole corpus; the scores are the same). A query
without a candidate list gets an empty run, as in mteb; a candidate the corpus lacks is an error.
``--limit N`` keeps the first N queries and their candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.core.encoder import Encoder
from harness.core.errors import HarnessError
from harness.tasks.definition import TaskDefinition
from harness.tasks.loading import column, load_part, require_columns, resolve_config
from harness.tasks.retrieval import (
    SHOWN_IDS,
    Encodings,
    Retrieval,
    RetrievalProtocol,
    RetrievalSplit,
    Run,
    candidate_search,
    kept_candidates,
)

TOP_RANKED_CONFIGS = ("top_ranked",)


@dataclass
class RerankingSplit(RetrievalSplit):
    """A retrieval split with each query's candidate documents."""

    candidates: dict[str, list[str]] = field(default_factory=dict, kw_only=True)


class Reranking(Retrieval):
    """Queries rerank their candidate documents; retrieval metrics of the reranked lists."""

    name = "reranking"
    default_main_score = "map_at_1000"
    scores_multi_vector = False

    def _load_split(
        self, task: TaskDefinition, protocol: RetrievalProtocol, split: str, limit: int | None
    ) -> RetrievalSplit:
        """The retrieval split with the candidates of its first ``limit`` queries; the corpus
        holds the candidates only."""
        data = super()._load_split(task, protocol, split, None)
        candidates = self._candidates(task, split)
        queries = data.queries[:limit] if limit is not None else data.queries
        listed = {query.id: candidates.get(query.id, []) for query in queries}
        known = {doc.id for doc in data.corpus}
        unknown = sorted({doc for docs in listed.values() for doc in docs} - known)
        if unknown:
            shown = ", ".join(map(repr, unknown[:SHOWN_IDS])) + (
                ", ..." if len(unknown) > SHOWN_IDS else ""
            )
            raise HarnessError(
                f"task {task.name}: the top_ranked lists of split {split!r} name "
                f"{len(unknown)} document(s) that are not in the corpus ({shown}). Fix the "
                "dataset so every candidate is a corpus document."
            )
        wanted = {doc for docs in listed.values() for doc in docs}
        return RerankingSplit(
            queries,
            [doc for doc in data.corpus if doc.id in wanted],
            {query.id: data.qrels[query.id] for query in queries},
            candidates=listed,
        )

    def _candidates(self, task: TaskDefinition, split: str) -> dict[str, list[str]]:
        """Each query's candidate document ids, from the ``top_ranked`` config."""
        config = resolve_config(task, "top_ranked", TOP_RANKED_CONFIGS)
        data = load_part(task, "top_ranked", config, split)
        names = [column(task, name) for name in ("query-id", "corpus-ids")]
        require_columns(task, data, config, names)
        candidates: dict[str, list[str]] = {}
        for query_id, docs in zip(*(data[name] for name in names), strict=True):
            if not isinstance(docs, list):
                raise HarnessError(
                    f"task {task.name}: column {names[1]!r} of config {config!r} must hold a "
                    f"list of document ids per query; query {query_id!r} has {docs!r}."
                )
            candidates[str(query_id)] = [str(doc) for doc in docs]
        return candidates

    def _search(
        self,
        data: RetrievalSplit,
        protocol: RetrievalProtocol,
        encoder: Encoder,
        queries: Encodings,
        corpus: Encodings,
    ) -> Run:
        """Each query's run over its candidates that were encoded (not skipped)."""
        assert isinstance(data, RerankingSplit)
        return candidate_search(data.candidates, protocol, encoder, queries, corpus)

    def _pool(self, data: RetrievalSplit, query_id: str, kept: set[str]) -> set[str]:
        """A query's candidates that were encoded."""
        assert isinstance(data, RerankingSplit)
        return kept_candidates(data.candidates, query_id, kept)
