"""Multiple choice (MIEB's VisionCentricQA: CV-Bench, BLINK), scored as mteb scores it.

mteb casts a multiple-choice question as retrieval restricted to the question's candidates
(its reranking path): the query (an image, a question, or both) is compared with each of its
candidate answers only, and the run is scored with the retrieval metrics; the main score
``accuracy`` is recall@1. The k values, ``skip_first_result`` and ``ignore_identical_ids`` are
the retrieval ones (mteb's defaults for these tasks).

Two hub layouts (``protocol.layout``):

- ``retrieval`` (BLINK): configs ``corpus``, ``queries`` and ``qrels`` as for retrieval, the
  qrels listing each query's candidates with score 1 (the answer) or 0. The candidates are a
  ``top_ranked`` config (columns ``query-id``, ``corpus-ids``) or the qrels' documents
  (``protocol.candidates``: ``auto`` takes ``top_ranked`` when the dataset has it). mteb's
  BLINK tasks take the qrels' documents even when a ``top_ranked`` config exists: declare
  ``candidates: qrels`` for them.
- ``choices`` (CV-Bench): one config whose rows hold ``image``, ``question``, ``choices`` (a
  list of answer texts) and ``answer`` (``"(A)"``... or a 0-based index); ``protocol.where``
  keeps the rows whose columns hold the given values (CV-Bench's ``task`` column selects
  Count, Relation, Depth or Distance). As mteb does, the query of row ``i`` (after filtering) is
  ``query-<split>-<i>`` and the candidates are documents keyed by answer text: a text used by
  several questions is one document ``corpus-<split>-<n>``, numbered in order of first use.
- ``answer_text`` (MVEB's VideoCentricQA: EgoSchema, OmniVideoBench): one config whose rows
  hold the query's columns (``question``, and ``video``...), ``choices`` (a list of candidate
  texts) and ``answer`` (the right candidate's text), read as mteb's loaders read them: the
  query of row ``i`` is ``query-<split>-<i>``, its candidate ``j`` a document of its own,
  ``query-<split>-<i>-c<j>`` (text stripped, as mteb strips a corpus' text), and the one
  relevant document the last candidate equal to the answer; a question whose answer is none of
  its candidates has no judgment and is dropped, as mteb drops it.

The query of a ``choices`` or ``answer_text`` row has a part per modality of the category's
query side: ``question`` is its text, any other modality the column of that name.

Behaviour kept from mteb: a query without candidates scores as a miss; ties between
candidates (say, two identical images) are broken by document id, descending, as pytrec_eval
does. Only the candidates of the evaluated queries are encoded (mteb encodes the whole corpus;
the vectors, hence the scores, are the same).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from harness.core.encoder import Encoder
from harness.core.errors import HarnessError
from harness.core.items import RawItem
from harness.scoring.retrieval import drop_queries_without_positives
from harness.tasks.definition import TaskDefinition
from harness.tasks.loading import (
    column,
    config_names,
    load_part,
    require_columns,
    resolve_config,
    undecoded,
)
from harness.tasks.retrieval import (
    Encodings,
    Retrieval,
    RetrievalProtocol,
    RetrievalSplit,
    Run,
    candidate_search,
    kept_candidates,
)

if TYPE_CHECKING:
    import datasets

Candidates = dict[str, list[str]]
_LETTER = re.compile(r"^\(([A-Z])\)$")


class MultipleChoiceProtocol(RetrievalProtocol):
    """mteb's retrieval constants, plus where the questions and their candidates come from."""

    layout: Literal["retrieval", "choices", "answer_text"] = "retrieval"
    candidates: Literal["auto", "top_ranked", "qrels"] = "auto"
    where: dict[str, str | int | bool] = Field(default_factory=dict)


@dataclass
class ChoiceSplit(RetrievalSplit):
    """A retrieval split plus each query's candidate documents."""

    candidates: Candidates


class MultipleChoice(Retrieval):
    """Each query ranks its own candidates; accuracy (recall@1) and the retrieval metrics."""

    name = "multiple_choice"
    default_main_score = "accuracy"
    protocol_model = MultipleChoiceProtocol
    scores_multi_vector = False  # candidates are scored as single vectors

    def _load_split(
        self, task: TaskDefinition, protocol: RetrievalProtocol, split: str, limit: int | None
    ) -> ChoiceSplit:
        assert isinstance(protocol, MultipleChoiceProtocol)
        if protocol.layout == "retrieval":
            data = self._retrieval_split(task, protocol, split)
        else:
            data = self._choices_split(task, protocol, split)
        if limit is not None:
            data = _first_queries(data, limit)
        return data

    def _search(
        self,
        data: RetrievalSplit,
        protocol: RetrievalProtocol,
        encoder: Encoder,
        queries: Encodings,
        corpus: Encodings,
    ) -> Run:
        """Score every query against its candidates that the encoder kept."""
        assert isinstance(data, ChoiceSplit)
        return candidate_search(data.candidates, protocol, encoder, queries, corpus)

    def _pool(self, data: RetrievalSplit, query_id: str, kept: set[str]) -> set[str]:
        """A query's candidates that were encoded."""
        assert isinstance(data, ChoiceSplit)
        return kept_candidates(data.candidates, query_id, kept)

    def _retrieval_split(
        self, task: TaskDefinition, protocol: MultipleChoiceProtocol, split: str
    ) -> ChoiceSplit:
        """The BEIR-style layout; candidates from ``top_ranked`` or from the qrels."""
        base = super()._load_split(task, protocol, split, None)
        if _uses_top_ranked(task, protocol):
            candidates = self._top_ranked(task, split)
        else:
            candidates = {qid: list(docs) for qid, docs in base.qrels.items()}
        needed = {doc for qid in base.qrels for doc in candidates.get(qid, ())}
        corpus = [doc for doc in base.corpus if doc.id in needed]
        missing = needed - {doc.id for doc in corpus}
        if missing:
            raise HarnessError(
                f"task {task.name}: {len(missing)} candidate document(s) of split {split!r} "
                f"(e.g. {sorted(missing)[0]!r}) are not in the corpus. Add them to the corpus "
                "config or remove them from the candidates."
            )
        return ChoiceSplit(base.queries, corpus, base.qrels, candidates)

    def _top_ranked(self, task: TaskDefinition, split: str) -> Candidates:
        config = resolve_config(task, "top_ranked", ("top_ranked",))
        data = load_part(task, "top_ranked", config, split)
        names = [column(task, "query-id"), column(task, "corpus-ids")]
        require_columns(task, data, config, names)
        return {
            str(qid): [str(doc) for doc in docs or ()]
            for qid, docs in zip(data[names[0]], data[names[1]], strict=True)
        }

    def _choices_split(
        self, task: TaskDefinition, protocol: MultipleChoiceProtocol, split: str
    ) -> ChoiceSplit:
        """The layouts of one row per question, with its choices and answer (CV-Bench's, or
        the video QA tasks' ``answer_text``)."""
        if task.sides.document != ("text",):
            raise HarnessError(
                f"task {task.name}: layout {protocol.layout!r} holds text answers, so the "
                f"category must end in '2t' (it is {task.category!r})."
            )
        config = task.dataset.configs.get("default", "default")
        data = _filtered(task, load_part(task, "default", config, split), config, protocol.where)
        parts = {
            modality: column(task, "question" if modality == "text" else modality)
            for modality in task.sides.query
        }
        fields = [column(task, "choices"), column(task, "answer")]
        require_columns(task, data, config, [*fields, *parts.values()])
        data = undecoded(data, [name for modality, name in parts.items() if modality != "text"])
        builder = _ChoiceBuilder(task, split, per_question=protocol.layout == "answer_text")
        for index, row in enumerate(data):
            builder.add(index, row, parts, *fields)
        return builder.result()


class _ChoiceBuilder:
    """Collects queries, text documents, qrels and candidates, row by row: a document per
    distinct answer text and the answer by position (``choices``), or a document per candidate
    of each question and the answer by its text (``per_question``: ``answer_text``)."""

    def __init__(self, task: TaskDefinition, split: str, *, per_question: bool) -> None:
        self.task, self.split, self.per_question = task, split, per_question
        self.queries: list[RawItem] = []
        self.documents: dict[str, RawItem] = {}
        self.doc_ids: dict[str, str] = {}
        self.qrels: dict[str, dict[str, int]] = {}
        self.candidates: Candidates = {}

    def add(
        self,
        index: int,
        row: dict[str, Any],
        parts: dict[str, str],
        choices_column: str,
        answer_column: str,
    ) -> None:
        """Add row ``index``: its query (a part per modality of ``parts``, modality -> column),
        its candidates and their judgments."""
        query_id = f"query-{self.split}-{index}"
        choices = list(row[choices_column] or ())
        if self.per_question:
            candidates = self._own(query_id, choices, choices_column)
            matches = [
                doc
                for doc, choice in zip(candidates, choices, strict=True)
                if choice == row[answer_column]
            ]
            self.qrels[query_id] = {matches[-1]: 1} if matches else {}
        else:
            texts = [str(choice) for choice in choices]
            answer = texts[self._answer_index(index, row[answer_column], len(texts))]
            candidates = [self._shared(text) for text in texts]
            judged = self.qrels.setdefault(query_id, {})
            for doc_id, text in zip(candidates, texts, strict=True):
                judged[doc_id] = int(text == answer)
        self.candidates[query_id] = list(dict.fromkeys(candidates))
        cells = {modality: (name, row[name]) for modality, name in parts.items()}
        optional = len(cells) > 1 and not self.per_question
        self.queries.append(RawItem.read(query_id, cells, optional=optional))

    def _shared(self, text: str) -> str:
        """The document of an answer text, added on its first use."""
        if text not in self.doc_ids:
            doc_id = self.doc_ids[text] = f"corpus-{self.split}-{len(self.doc_ids)}"
            self.documents[doc_id] = RawItem.of(doc_id, text=text)
        return self.doc_ids[text]

    def _own(self, query_id: str, choices: list[Any], choices_column: str) -> list[str]:
        """A document per candidate of one question (its text stripped, as mteb strips a
        corpus' text)."""
        ids = [f"{query_id}-c{j}" for j in range(len(choices))]
        for doc_id, choice in zip(ids, choices, strict=True):
            text = choice.strip() if isinstance(choice, str) else choice
            self.documents[doc_id] = RawItem.read(doc_id, {"text": (choices_column, text)})
        return ids

    def _answer_index(self, index: int, answer: Any, count: int) -> int:
        """The answer as a 0-based index: an int, or a letter in parentheses like ``(B)``."""
        match = _LETTER.match(answer) if isinstance(answer, str) else None
        position = ord(match.group(1)) - ord("A") if match else answer
        if isinstance(position, int) and not isinstance(position, bool) and 0 <= position < count:
            return position
        raise HarnessError(
            f"task {self.task.name}: row {index} of split {self.split!r} has the answer "
            f"{answer!r} for {count} choices. An answer must be a letter like '(A)' or a "
            "0-based index into the choices (map the column under dataset.columns.answer)."
        )

    def result(self) -> ChoiceSplit:
        """The split; questions without a judgment are dropped with their candidates, as mteb
        drops them."""
        qrels = drop_queries_without_positives(self.qrels)
        queries = [query for query in self.queries if query.id in qrels]
        candidates = {qid: self.candidates[qid] for qid in qrels}
        needed = {doc for docs in candidates.values() for doc in docs}
        corpus = [doc for doc_id, doc in self.documents.items() if doc_id in needed]
        return ChoiceSplit(queries, corpus, qrels, candidates)


def _uses_top_ranked(task: TaskDefinition, protocol: MultipleChoiceProtocol) -> bool:
    if protocol.candidates != "auto":
        return protocol.candidates == "top_ranked"
    return "top_ranked" in task.dataset.configs or "top_ranked" in config_names(task)


def _filtered(
    task: TaskDefinition, data: datasets.Dataset, config: str, where: dict[str, Any]
) -> datasets.Dataset:
    """The rows whose ``where`` columns hold the given values (no image is decoded)."""
    if not where:
        return data
    require_columns(task, data, config, list(where))
    kept = data.filter(
        lambda *values: all(v == want for v, want in zip(values, where.values(), strict=True)),
        input_columns=list(where),
    )
    if len(kept) == 0:
        raise HarnessError(
            f"task {task.name}: no row of config {config!r} matches protocol.where {where}. "
            "Check the column values."
        )
    return kept


def _first_queries(data: ChoiceSplit, limit: int) -> ChoiceSplit:
    """The first ``limit`` queries with their qrels, candidates and candidate documents."""
    queries = data.queries[:limit]
    ids = [query.id for query in queries]
    candidates = {qid: data.candidates[qid] for qid in ids if qid in data.candidates}
    needed = {doc for docs in candidates.values() for doc in docs}
    corpus = [doc for doc in data.corpus if doc.id in needed]
    return ChoiceSplit(queries, corpus, {qid: data.qrels[qid] for qid in ids}, candidates)
