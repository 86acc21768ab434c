"""Any-to-any retrieval over BEIR-style datasets, scored as mteb scores it.

Reads the layouts MIEB's and MAEB's retrieval datasets use on the hub: configs ``corpus``,
``queries`` (or ``query``) and ``qrels`` (or ``default``); columns ``id``/``_id`` (ViDoRe:
``query-id`` and ``corpus-id``), one per modality of the side (``text``, ``image``, ``audio``),
``modality``, and ``query-id``, ``corpus-id``, ``score``. ``paired`` reads instead one table of
images or clips with their captions (see ``PairedSpec``), and ``split_subsets`` scores each
named split of the dataset as its own subset, as mteb's multilingual image-caption tasks (WIT,
XM3600, XFlickr30k-CO) store their languages; ``config_subsets`` the paired table of each named
config (MAEB's CommonVoice: one config per language), or without ``paired`` the queries, corpus
and qrels of configs ``<subset>-queries``, ``<subset>-corpus`` and ``<subset>-qrels``, as mteb
names a multilingual retrieval dataset's configs (ViDoRe v3); ``dir_subsets`` the queries,
corpus and qrels under each named folder (``<subset>/queries/``...), as JinaVDR's multilingual
tasks store their languages.
``grouped`` reads one table whose rows are queries and documents related by a shared value
(MAEB's JamAlt tasks; see ``GroupedSpec``).

A query or corpus id that appears on several rows, and a (query, document) pair judged more
than once, are an error by default that names them. ``duplicates: last`` keeps the last row of
each id and the last judgment of each pair: what mteb's qrels loader keeps
(``dict(zip(corpus-id, score))``). ``duplicates: pool`` keeps every row, as mteb does (MAEB's
FleursT2ARetrieval: a sentence id repeats once per speaker): every row is encoded and searched,
the rows that share a query id pool their hits into one top-k list and a document id found
more than once keeps one score, both as mteb's search builds its results (see
``harness.scoring.pooled_search``).

Judgments that name a query or a document the dataset lacks are an error by default. mteb
ignores them silently: a judged query that is not among the queries is never run, and a document
judged relevant that is not in the corpus stays a relevant document that can never be retrieved
(lowering recall and nDCG). ``unknown_qrels: mteb`` does the same; ``unknown_qrels: drop``
drops both kinds of judgment.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from math import fsum
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.core.document_parts import document_items
from harness.core.encoder import Encoder
from harness.core.errors import HarnessError
from harness.core.items import RawItem
from harness.core.similarity import MAXSIM
from harness.scoring.bootstrap import UnitScores
from harness.scoring.candidates import candidate_run
from harness.scoring.pooled_search import pooled_run
from harness.scoring.retrieval import (
    DEFAULT_K_VALUES,
    drop_queries_without_positives,
    metric_names,
    retrieval_scores,
)
from harness.scoring.search import run_from_top_k, top_k_search
from harness.tasks.base import LoadedSplit, Protocol, Scores, SplitOutcome, TaskType
from harness.tasks.chance import random_ranking
from harness.tasks.definition import TaskDefinition
from harness.tasks.loading import column, load_part, require_columns, resolve_config, undecoded

if TYPE_CHECKING:
    import datasets

CONFIG_CANDIDATES = {
    "corpus": ("corpus",),
    "queries": ("queries", "query"),
    "qrels": ("qrels", "default"),
}
ID_CANDIDATES = {"queries": ("_id", "query-id"), "corpus": ("_id", "corpus-id")}
SHOWN_IDS = 5
MTEB_CORPUS_CHUNK = 50_000  # documents mteb's dense search scores at once
Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]


@dataclass
class RetrievalSplit:
    """One data split ready to encode: queries with positives, the corpus, the queries' qrels,
    and with ``protocol.subsets`` the subset of each id that has one (None: no subsets)."""

    queries: list[RawItem]
    corpus: list[RawItem]
    qrels: Qrels
    subset_of: dict[str, str] | None = field(default=None, kw_only=True)


@dataclass(frozen=True, kw_only=True)
class RetrievalData(LoadedSplit):
    """An eval split's data splits by subset: ``default``, or each of ``split_subsets``."""

    parts: dict[str, RetrievalSplit]

    def input_counts(self) -> dict[str, int]:
        """Queries and corpus documents, over every data split."""
        return {
            "queries": sum(len(part.queries) for part in self.parts.values()),
            "corpus": sum(len(part.corpus) for part in self.parts.values()),
        }


@dataclass(frozen=True)
class Encodings:
    """The ids and vectors of the items the encoder kept, row for row."""

    ids: list[str]
    vectors: np.ndarray


def kept_candidates(candidates: Mapping[str, list[str]], query_id: str, kept: set[str]) -> set[str]:
    """A query's candidates that were encoded: the pool ``candidate_search`` ranks."""
    return {doc for doc in candidates.get(query_id, ()) if doc in kept}


def candidate_search(
    candidates: Mapping[str, list[str]],
    protocol: RetrievalProtocol,
    encoder: Encoder,
    queries: Encodings,
    corpus: Encodings,
) -> Run:
    """Each query's run over its own candidates that were encoded (skipped ones left out), as
    mteb scores ``top_ranked`` tasks (reranking, multiple choice, video QA)."""
    kept = set(corpus.ids)
    return candidate_run(
        queries.ids,
        queries.vectors,
        corpus.ids,
        corpus.vectors,
        {qid: [doc for doc in candidates.get(qid, ()) if doc in kept] for qid in queries.ids},
        top_k=max(protocol.k_values),
        similarity=encoder.adapter.meta.similarity,
    )


class SubsetSpec(BaseModel):
    """Scores for subsets of the queries (e.g. per language), beside the overall ``default``.

    ``part: corpus`` puts a query in the subset of its relevant documents (a page's language),
    ``part: queries`` in its own. The subset is a ``column`` of that part, or the first group of
    ``id_pattern`` searched in the id. ``languages`` gives a subset's language codes (default:
    the task's). ``optional`` reports only the overall score when the column is absent.
    """

    model_config = ConfigDict(extra="forbid")

    part: Literal["corpus", "queries"] = "corpus"
    column: str | None = None
    id_pattern: str | None = None
    languages: dict[str, list[str]] = Field(default_factory=dict)
    optional: bool = False

    @field_validator("id_pattern")
    @classmethod
    def _one_group(cls, pattern: str | None) -> str | None:
        if pattern is not None and re.compile(pattern).groups < 1:
            raise ValueError(f"id_pattern {pattern!r} needs a group, e.g. '^([a-z]+)_'")
        return pattern

    @model_validator(mode="after")
    def _one_source(self) -> SubsetSpec:
        if (self.column is None) == (self.id_pattern is None):
            raise ValueError("subsets: give exactly one of `column` and `id_pattern`")
        return self


class PairedSpec(Protocol):
    """One table whose every row pairs a query side with its document side (columns ``id``
    and one per modality of the category: ``text``, ``image``, ``audio``, ``video``), read as
    mteb reads such tables into queries, corpus and qrels; the two sides must differ.

    A side that is text alone (t2i, a2t...) gets one item per caption (``text`` holds one
    caption or a list, or with ``caption_separator`` captions joined by it, split as
    ``str.split`` splits them, empty pieces included and encoded as mteb encodes them: MAEB's
    Clotho joins its captions with "."); any other side one item per row, with a part per
    modality (an image; a clip; MVEB's ``va`` and ``vt`` sides: a clip and its audio track or
    caption, each in its own column). A query's relevant documents are the other side of its
    own row.
    Ids are mteb's: ``query-<key>`` / ``corpus-<key>``, plus ``-<n>`` for the n-th caption of a
    list, where the key is the ``id`` column (``ids: column``) or ``<split>-<row number>``
    (``ids: row``). The queries are the rows of the split being scored; the corpus the rows of
    ``corpus_splits`` in that order (default: the same split), only the first row of each caption
    when ``unique_text``. ``require_text`` first drops rows without a caption.
    """

    ids: Literal["column", "row"] = "column"
    corpus_splits: list[str] = Field(default_factory=list)
    unique_text: bool = False
    require_text: bool = False
    caption_separator: str | None = None

    unrecorded_defaults = ("caption_separator",)


@dataclass(frozen=True)
class PairedRow:
    """One row of a paired table: its key, and its cells by modality (the caption(s) under
    ``text``; images and clips, where needed, as stored, read by ``RawItem.read``)."""

    key: str
    cells: dict[str, Any]

    @property
    def captions(self) -> str | list[str] | None:
        """The row's caption, or its list of captions; None without one."""
        captions: str | list[str] | None = self.cells.get("text")
        return captions

    def side_ids(self, prefix: str, side: tuple[str, ...]) -> list[str]:
        """The ids of the row's items on a side: one per caption of a text side, else one."""
        if side == ("text",):
            return [item_id for item_id, _ in self.text_ids(prefix)]
        return [f"{prefix}-{self.key}"]

    def text_ids(self, prefix: str) -> list[tuple[str, str]]:
        """(id, caption) of each caption, named as mteb names them; none without a caption."""
        if self.captions is None:
            return []
        if isinstance(self.captions, str):
            return [(f"{prefix}-{self.key}", self.captions)]
        return [(f"{prefix}-{self.key}-{n}", text) for n, text in enumerate(self.captions)]


class GroupedSpec(Protocol):
    """One table whose every row is both a query and a document, relevant to each other when
    they share ``group_column``'s value, as mteb's JamAlt tasks read it (``group_column``:
    ``artist`` or ``text``): the query side's column (by the category's modality) is the query,
    the document side's the document. Ids are ``query-<key>`` / ``corpus-<key>``, the key being
    ``id_template`` filled with the row's columns (JamAlt: ``{song_name}{line_indices[0]}``); a
    query is relevant to its own row's document. ``subsets`` (``{value: [languages]}``) scores
    the rows of each value of ``subset_column`` on their own (JamAlt: ``song_language``).
    """

    group_column: str
    id_template: str = "{id}"
    subset_column: str | None = None
    subsets: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _subsets_need_a_column(self) -> GroupedSpec:
        if self.subsets and self.subset_column is None:
            raise ValueError("grouped: `subsets` needs the `subset_column` that holds them")
        return self


class RetrievalProtocol(Protocol):
    """mteb's retrieval constants, how to treat unknown ids in the qrels, and score subsets."""

    k_values: tuple[int, ...] = DEFAULT_K_VALUES
    skip_first_result: bool = False
    ignore_identical_ids: bool = False
    unknown_qrels: Literal["error", "mteb", "drop"] = "error"
    duplicates: Literal["error", "last", "pool"] = "error"
    subsets: SubsetSpec | None = None
    paired: PairedSpec | None = None
    split_subsets: dict[str, list[str]] = Field(default_factory=dict)
    grouped: GroupedSpec | None = None
    config_subsets: dict[str, list[str]] = Field(default_factory=dict)
    dir_subsets: dict[str, list[str]] = Field(default_factory=dict)
    # A document's blank text stays a part, an empty string beside its other parts, as mteb
    # encodes it (ViDoRe v3.1: pages whose OCR found no text); by default the part is absent.
    keep_blank_text: bool = False

    unrecorded_defaults = ("grouped", "config_subsets", "dir_subsets", "keep_blank_text")

    @field_validator("k_values")
    @classmethod
    def _positive_k(cls, k_values: tuple[int, ...]) -> tuple[int, ...]:
        if not k_values or min(k_values) < 1 or len(set(k_values)) != len(k_values):
            raise ValueError(f"k_values must be distinct positive integers, got {list(k_values)}")
        return k_values

    @model_validator(mode="after")
    def _one_kind_of_subset(self) -> RetrievalProtocol:
        if self.subsets is not None and self.split_subsets:
            raise ValueError("give either `subsets` (of the queries) or `split_subsets`, not both")
        if self.grouped is not None and (self.paired or self.subsets or self.split_subsets):
            raise ValueError("`grouped` is a layout of its own: no `paired`, `subsets` or "
                             "`split_subsets` with it")  # fmt: skip
        if self.config_subsets and (self.grouped or self.subsets or self.split_subsets):
            raise ValueError("`config_subsets` reads each subset from its own configs: no "
                             "`grouped`, `subsets` or `split_subsets` with it")  # fmt: skip
        others = (self.paired, self.grouped, self.subsets, self.split_subsets, self.config_subsets)
        if self.dir_subsets and any(others):
            raise ValueError("`dir_subsets` reads queries, corpus and qrels from each subset's "
                             "folder: no other layout or subsets with it")  # fmt: skip
        return self

    @property
    def subset_languages(self) -> dict[str, list[str]]:
        """The subsets scored on their own (dataset splits or configs, or groups of rows), by
        name."""
        if self.grouped is not None:
            return self.grouped.subsets
        return self.split_subsets or self.config_subsets or self.dir_subsets


class Retrieval(TaskType[RetrievalData]):
    """Queries retrieve documents; nDCG, MAP, recall, precision, MRR and hit rate at k."""

    name = "retrieval"
    default_main_score = "ndcg_at_10"
    protocol_model = RetrievalProtocol
    scores_multi_vector = True

    def metric_names(self, task: TaskDefinition) -> tuple[str, ...]:
        """Each metric at each of the protocol's k values."""
        protocol = self.protocol(task)
        assert isinstance(protocol, RetrievalProtocol)
        return metric_names(protocol.k_values)

    def load(self, task: TaskDefinition, split: str, limit: int | None = None) -> RetrievalData:
        """Queries, corpus, qrels (and subsets) of ``split``, or with ``split_subsets`` of each
        dataset split named there; ``limit`` keeps the first queries of each."""
        protocol = self.protocol(task)
        assert isinstance(protocol, RetrievalProtocol)
        if protocol.grouped is not None and protocol.grouped.subsets:
            whole = self._load_split(task, protocol, split, None)
            subset_of = _grouped_subsets(task, protocol.grouped, split)
            parts = {
                subset: _rows_of(whole, subset_of, subset, limit)
                for subset in protocol.grouped.subsets
            }
            return RetrievalData(split=split, parts=parts)
        if protocol.config_subsets:
            parts = {
                config: self._load_data(
                    _in_config(task, config, paired=protocol.paired is not None),
                    protocol,
                    split,
                    limit,
                )
                for config in protocol.config_subsets
            }
            return RetrievalData(split=split, parts=parts)
        if protocol.dir_subsets:
            parts = {
                folder: self._load_data(_in_folder(task, folder), protocol, split, limit)
                for folder in protocol.dir_subsets
            }
            return RetrievalData(split=split, parts=parts)
        data_splits = {name: name for name in protocol.split_subsets} or {"default": split}
        parts = {
            subset: self._load_data(task, protocol, data_split, limit)
            for subset, data_split in data_splits.items()
        }
        return RetrievalData(split=split, parts=parts)

    def score(self, task: TaskDefinition, loaded: RetrievalData, encoder: Encoder) -> SplitOutcome:
        """Encode queries and corpus, rank documents for every query, score with pytrec_eval.

        With ``split_subsets`` each subset is the dataset split of that name, with ``grouped``
        subsets the rows of that value, scored on its own.
        """
        protocol = self.protocol(task)
        assert isinstance(protocol, RetrievalProtocol)
        if not protocol.subset_languages:
            return self._score_data(task, protocol, encoder, loaded.split, loaded.parts["default"])
        entries: list[Scores] = []
        skipped: list[str] = []
        units: dict[str, UnitScores] = {}
        chance: dict[str, float] = {}
        for subset, languages in protocol.subset_languages.items():
            outcome = self._score_data(task, protocol, encoder, subset, loaded.parts[subset])
            entries += [
                {**entry, "hf_subset": subset, "languages": languages} for entry in outcome.subsets
            ]
            skipped += outcome.skipped_inputs
            units[subset] = outcome.units["default"]
            if "default" in outcome.chance:
                chance[subset] = outcome.chance["default"]
        return SplitOutcome(entries, skipped, units, chance=chance)

    def _load_data(
        self, task: TaskDefinition, protocol: RetrievalProtocol, split: str, limit: int | None
    ) -> RetrievalSplit:
        """One data split, with the subset of each query or relevant document."""
        data = self._load_split(task, protocol, split, limit)
        if protocol.subsets is not None:
            data.subset_of = self._subset_map(task, protocol.subsets, split, data)
        return data

    def _score_data(
        self,
        task: TaskDefinition,
        protocol: RetrievalProtocol,
        encoder: Encoder,
        split: str,
        data: RetrievalSplit,
    ) -> SplitOutcome:
        """Score one data split: its queries against its corpus (of documents with a page and
        a text, the parts the adapter embeds: ``harness.core.document_parts``)."""
        encoded_queries = encoder.encode(
            data.queries, role="query", instruction=task.prompts.query, task=task.name
        )
        corpus = document_items(data.corpus, task.sides.document, encoder.adapter.meta)
        encoded_corpus = encoder.encode(
            corpus, role="document", instruction=task.prompts.document, task=task.name
        )
        query_ids = _kept_ids(data.queries, encoded_queries.kept)
        corpus_ids = _kept_ids(data.corpus, encoded_corpus.kept)
        for part, ids, items in (
            ("queries", query_ids, data.queries),
            ("corpus", corpus_ids, data.corpus),
        ):
            if not ids:
                raise HarnessError(
                    f"task {task.name}: all {len(items)} {part} item(s) of split {split!r} were "
                    "skipped as bad input, so nothing is left to score. Fix the dataset."
                )
        if protocol.duplicates == "pool" and len(corpus_ids) > MTEB_CORPUS_CHUNK:
            raise HarnessError(
                f"task {task.name}: `duplicates: pool` reproduces mteb's search of one corpus "
                f"chunk (at most {MTEB_CORPUS_CHUNK} documents), but the corpus of split "
                f"{split!r} holds {len(corpus_ids)}; split it into subsets or drop the option."
            )
        run = self._search(
            data,
            protocol,
            encoder,
            Encodings(query_ids, encoded_queries.vectors[encoded_queries.kept]),
            Encodings(corpus_ids, encoded_corpus.vectors[encoded_corpus.kept]),
        )
        skipped = [*encoded_queries.skipped, *encoded_corpus.skipped]
        entries, units = self._split_scores(
            task, protocol, data.subset_of, data.qrels, run, query_ids
        )
        outcome = SplitOutcome(entries, skipped, units)
        per_query = self._query_chance(task, protocol, data, query_ids, corpus_ids)
        if per_query is not None:
            groups = _query_groups(protocol, data.subset_of, data.qrels, query_ids)
            outcome.chance = {
                subset: fsum(per_query[qid] for qid in ids) / len(ids)
                for subset, ids in groups.items()
            }
        return outcome

    def _query_chance(
        self,
        task: TaskDefinition,
        protocol: RetrievalProtocol,
        data: RetrievalSplit,
        query_ids: list[str],
        corpus_ids: list[str],
    ) -> dict[str, float] | None:
        """Each scored query's expected main score when its pool (``_pool``) is ranked in
        uniformly random order (``harness.tasks.chance.random_ranking``); None for a main score
        without a closed form, or when an option reshapes the ranking (``skip_first_result``,
        ``ignore_identical_ids``, ``duplicates: pool``)."""
        reshaped = protocol.skip_first_result or protocol.ignore_identical_ids
        if reshaped or protocol.duplicates == "pool":
            return None
        main, kept = self.main_score(task), set(corpus_ids)
        chance = {}
        for qid in query_ids:
            judged, pool = data.qrels[qid], self._pool(data, qid, kept)
            in_pool = [relevance for doc, relevance in judged.items() if doc in pool]
            level = random_ranking(main, len(pool), in_pool, list(judged.values()))
            if level is None:
                return None
            chance[qid] = level
        return chance

    def _pool(self, data: RetrievalSplit, query_id: str, kept: set[str]) -> Collection[str]:
        """The documents a query's run ranks: every encoded document of the corpus."""
        return kept

    def _load_split(
        self, task: TaskDefinition, protocol: RetrievalProtocol, split: str, limit: int | None
    ) -> RetrievalSplit:
        """Queries with positives, the corpus, and their qrels (a subclass may add more)."""
        if protocol.paired is not None:
            queries, corpus, qrels = self._paired(task, protocol.paired, split, protocol.duplicates)
        elif protocol.grouped is not None:
            queries, corpus, qrels = self._grouped(
                task, protocol.grouped, split, protocol.duplicates
            )
        else:
            qrels = self._qrels(task, split, protocol.duplicates)
            queries = self._items(task, "queries", split, protocol.duplicates)
            corpus = self._items(
                task, "corpus", split, protocol.duplicates, keep_blank_text=protocol.keep_blank_text
            )
        qrels = _known_qrels(task, split, protocol.unknown_qrels, qrels, queries, corpus)
        qrels = drop_queries_without_positives(qrels)
        queries = [q for q in queries if q.id in qrels]
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
        """The run: every query's top max(k) documents of the whole corpus.

        Multi-vector embeddings are scored by MaxSim with mteb's zero-padding convention.
        With ``duplicates: pool`` each query row offers its best hits to its id's top k, as
        mteb's search does in its one corpus chunk (k + 1 hits; MaxSim: k).
        """
        similarity = encoder.adapter.meta.similarity
        multi_vector = similarity == MAXSIM  # ragged (tokens, d) arrays, one per item
        k = max(protocol.k_values)
        pool = protocol.duplicates == "pool"
        scores, indices = top_k_search(
            list(queries.vectors) if multi_vector else queries.vectors,
            list(corpus.vectors) if multi_vector else corpus.vectors,
            k + 1 if pool and not multi_vector else k,
            similarity=similarity,
            device=encoder.device,
        )
        if pool:
            return pooled_run(queries.ids, corpus.ids, scores, indices, k)
        return run_from_top_k(queries.ids, corpus.ids, scores, indices)

    def _paired(
        self, task: TaskDefinition, spec: PairedSpec, split: str, duplicates: str
    ) -> tuple[list[RawItem], list[RawItem], Qrels]:
        """Queries, corpus and qrels from a table that pairs the two sides row by row
        (``PairedSpec``)."""
        query_side, document_side = task.sides.query, task.sides.document
        if not document_side or query_side == document_side:
            raise HarnessError(
                f"task {task.name}: the paired layout reads each side from its own columns, so "
                f"the category needs other modalities on each side (it is {task.category!r})"
            )
        if spec.corpus_splits:
            query_rows = self._paired_rows(task, spec, split, query_side)
            corpus_rows = [
                row
                for corpus_split in spec.corpus_splits
                for row in self._paired_rows(task, spec, corpus_split, document_side)
            ]
        else:  # one table holds both sides: read it once
            query_rows = corpus_rows = self._paired_rows(
                task, spec, split, (*query_side, *document_side)
            )
        if spec.unique_text:
            firsts = {_hashable(row.captions): row for row in reversed(corpus_rows)}
            corpus_rows = [row for row in corpus_rows if firsts[_hashable(row.captions)] is row]
        split_captions = spec.caption_separator is not None
        queries = [
            item
            for row in query_rows
            for item in _paired_items(task, row, "query", query_side, split_captions)
        ]
        corpus = [
            item
            for row in corpus_rows
            for item in _paired_items(task, row, "corpus", document_side, split_captions)
        ]
        qrels = {
            query_id: dict.fromkeys(row.side_ids("corpus", document_side), 1)
            for row in query_rows
            for query_id in row.side_ids("query", query_side)
        }
        where = f"rows (column {column(task, 'id')!r})" if spec.ids == "column" else "rows"
        queries = _unique(task, split, f"query {where}", queries, duplicates)
        corpus = _unique(task, split, f"corpus {where}", corpus, duplicates)
        return queries, corpus, qrels

    def _paired_rows(
        self, task: TaskDefinition, spec: PairedSpec, split: str, side: tuple[str, ...]
    ) -> list[PairedRow]:
        """One split's rows: their captions (when a side has text), and the images or clips of
        the modalities of ``side`` (kept encoded)."""
        config = resolve_config(task, "pairs", ("default",))
        wanted: tuple[str, ...] = ("text",) if "text" in task.sides.inputs else ()
        wanted += tuple(modality for modality in side if modality != "text")
        names = {modality: column(task, modality) for modality in wanted}
        id_column = column(task, "id")
        needed = [*names.values(), *([id_column] if spec.ids == "column" else [])]
        data = load_part(task, "pairs", config, split)
        require_columns(task, data, config, needed)
        data = undecoded(data.select_columns(needed), [names[m] for m in wanted if m != "text"])
        cells = {modality: data[name] for modality, name in names.items()}
        if "text" in cells and spec.caption_separator is not None:
            cells["text"] = [
                text.split(spec.caption_separator) if isinstance(text, str) else text
                for text in cells["text"]
            ]
        texts = cells.get("text")
        keep = [
            n
            for n in range(len(data))
            if not (spec.require_text and texts is not None and texts[n] is None)
        ]
        row_ids = data[id_column] if spec.ids == "column" else None
        return [
            PairedRow(
                key=str(row_ids[n]) if row_ids is not None else f"{split}-{number}",
                cells={modality: values[n] for modality, values in cells.items()},
            )
            for number, n in enumerate(keep)
        ]

    def _grouped(
        self,
        task: TaskDefinition,
        spec: GroupedSpec,
        split: str,
        duplicates: str,
    ) -> tuple[list[RawItem], list[RawItem], Qrels]:
        """Queries, corpus and qrels from a table of rows related by a shared value within
        their subset (``GroupedSpec``)."""
        if len(task.sides.query) != 1 or len(task.sides.document) != 1:
            raise HarnessError(
                f"task {task.name}: the grouped layout reads one column per side, so the "
                f"category needs one modality on each side (it is {task.category!r})"
            )
        (query_part,), (document_part,) = task.sides.query, task.sides.document
        query_column, document_column = column(task, query_part), column(task, document_part)
        config, data = _grouped_table(task, spec, split)
        require_columns(task, data, config, [query_column, document_column, spec.group_column])
        keys = _grouped_keys(task, spec, data)
        data = undecoded(data, [query_column, document_column])
        subsets = data[spec.subset_column] if spec.subset_column else [None] * len(keys)
        queries = [
            RawItem.read(f"query-{key}", {query_part: (query_column, value)})
            for key, value in zip(keys, data[query_column], strict=True)
        ]
        corpus = [  # mteb strips a document's text
            RawItem.read(
                f"corpus-{key}",
                {
                    document_part: (
                        document_column,
                        value.strip() if isinstance(value, str) else value,
                    )
                },
            )
            for key, value in zip(keys, data[document_column], strict=True)
        ]
        shared = [
            (_hashable(subset), _hashable(value))
            for subset, value in zip(subsets, data[spec.group_column], strict=True)
        ]
        groups: dict[Any, set[str]] = {}
        for key, group in zip(keys, shared, strict=True):
            groups.setdefault(group, set()).add(key)
        qrels = {
            f"query-{key}": {f"corpus-{other}": 1 for other in groups[group]}
            for key, group in zip(keys, shared, strict=True)
        }
        where = f"rows of config {config!r}"
        queries = _unique(task, split, f"query {where}", queries, duplicates)
        corpus = _unique(task, split, f"corpus {where}", corpus, duplicates)
        return queries, corpus, qrels

    def _qrels(self, task: TaskDefinition, split: str, duplicates: str = "error") -> Qrels:
        """The judgments; a pair judged twice is an error unless ``duplicates: last``."""
        config = resolve_config(task, "qrels", CONFIG_CANDIDATES["qrels"])
        data = load_part(task, "qrels", config, split)
        names = [column(task, name) for name in ("query-id", "corpus-id", "score")]
        require_columns(task, data, config, names)
        qrels: Qrels = {}
        repeated: list[str] = []
        for query_id, doc_id, score in zip(*(data[name] for name in names), strict=True):
            judged = qrels.setdefault(str(query_id), {})
            if str(doc_id) in judged:
                repeated.append(f"({query_id}, {doc_id})")
            judged[str(doc_id)] = int(score)
        if repeated and duplicates == "error":
            raise _duplicates_error(
                task,
                split,
                f"qrels (columns {names[0]!r}, {names[1]!r})",
                "(query, document) pair",
                repeated,
            )
        return qrels

    def _items(
        self,
        task: TaskDefinition,
        part: str,
        split: str,
        duplicates: str = "error",
        *,
        keep_blank_text: bool = False,
    ) -> list[RawItem]:
        config = resolve_config(task, part, CONFIG_CANDIDATES[part])
        data = load_part(task, part, config, split)
        id_column = _id_column(task, part, data)
        side = task.sides.query if part == "queries" else task.sides.document
        columns = {name: column(task, name) for name in side}
        require_columns(task, data, config, [id_column, *columns.values()])
        data = undecoded(data, columns.values())
        title = column(task, "title")
        strip = part == "corpus"
        items = list(
            _raw_items(
                data, id_column, columns, title, strip=strip, keep_blank_text=keep_blank_text
            )
        )
        return _unique(task, split, f"{part} (column {id_column!r})", items, duplicates)

    def _split_scores(
        self,
        task: TaskDefinition,
        protocol: RetrievalProtocol,
        subset_of: dict[str, str] | None,
        qrels: Qrels,
        run: Run,
        query_ids: list[str],
    ) -> tuple[list[Scores], dict[str, UnitScores]]:
        """The overall ``default`` entry, then one entry per subset the protocol asks for
        (``subset_of`` maps an id to its subset); with each subset's per-query main scores
        (the units of its bootstrap)."""
        groups = _query_groups(protocol, subset_of, qrels, query_ids)
        entries, units = [], {}
        main = self.main_score(task)
        for subset, ids in groups.items():
            result = retrieval_scores(
                {qid: qrels[qid] for qid in ids},
                {qid: run[qid] for qid in ids if qid in run},
                protocol.k_values,
                skip_first_result=protocol.skip_first_result,
                ignore_identical_ids=protocol.ignore_identical_ids,
            )
            entry = self.subset_scores(task, result.score_dict(), subset)
            if protocol.subsets is not None and subset in protocol.subsets.languages:
                entry["languages"] = protocol.subsets.languages[subset]
            entries.append(entry)
            per_query = result.per_query
            values = [scores[main] for scores in per_query.values()]
            units[subset] = UnitScores.build("mean", list(per_query), values=values)
        return entries, units

    def _subset_map(
        self, task: TaskDefinition, spec: SubsetSpec, split: str, data: RetrievalSplit
    ) -> dict[str, str] | None:
        """The subset of each query (``part: queries``) or relevant document that has one;
        ``None`` when an optional subset column is absent."""
        lookup = self._subset_lookup(task, spec, split)
        if lookup is None:
            return None
        if spec.part == "queries":
            members = {query.id for query in data.queries}
        else:
            members = {d for docs in data.qrels.values() for d, s in docs.items() if s > 0}
        return {member: name for member in members if (name := lookup(member)) is not None}

    def _subset_lookup(
        self, task: TaskDefinition, spec: SubsetSpec, split: str
    ) -> Callable[[str], str | None] | None:
        """id -> subset name; ``None`` when an optional subset column is absent."""
        if spec.id_pattern is not None:
            pattern = re.compile(spec.id_pattern)
            return lambda item_id: m.group(1) if (m := pattern.search(item_id)) else None
        assert spec.column is not None
        config = resolve_config(task, spec.part, CONFIG_CANDIDATES[spec.part])
        data = load_part(task, spec.part, config, split)
        if spec.optional and spec.column not in data.column_names:
            return None
        id_column = _id_column(task, spec.part, data)
        require_columns(task, data, config, [id_column, spec.column])
        values = dict(zip(map(str, data[id_column]), data[spec.column], strict=True))
        return lambda item_id: None if values.get(item_id) is None else str(values[item_id])


def _in_config(task: TaskDefinition, config: str, *, paired: bool) -> TaskDefinition:
    """``task`` reading subset ``config`` (one of ``config_subsets``): its paired table from
    that config, or its queries, corpus and qrels from ``<config>-queries``... (each part's
    declared config name after the dash)."""
    if paired:
        configs = {**task.dataset.configs, "pairs": config}
    else:
        configs = {
            part: f"{config}-{task.dataset.configs.get(part, part)}" for part in CONFIG_CANDIDATES
        }
    return task.model_copy(update={"dataset": task.dataset.model_copy(update={"configs": configs})})


def _in_folder(task: TaskDefinition, folder: str) -> TaskDefinition:
    """``task`` reading queries, corpus and qrels from the folders of those names under
    ``folder`` (one of ``dir_subsets``: ``ar/queries/``...)."""
    configs = {
        part: f"{folder}/{task.dataset.configs.get(part, part).rstrip('/')}/"
        for part in CONFIG_CANDIDATES
    }
    return task.model_copy(update={"dataset": task.dataset.model_copy(update={"configs": configs})})


def _caption(item_id: str, text_column: str, text: Any, split_captions: bool) -> RawItem:
    """A caption's item. An empty piece of a split caption is kept (an empty text is bad input
    elsewhere): mteb encodes it as a query or document like any other."""
    if split_captions and text == "":
        return RawItem.of(item_id, text="")
    return RawItem.read(item_id, {"text": (text_column, text)})


def _paired_items(
    task: TaskDefinition, row: PairedRow, prefix: str, side: tuple[str, ...], split_captions: bool
) -> list[RawItem]:
    """A paired row's items on one side: one per caption of a text side, else one item with a
    part per modality. A document's text is stripped, as mteb strips a corpus' text."""
    strip = prefix == "corpus"
    if side == ("text",):
        return [
            _caption(item_id, column(task, "text"), _stripped(text, strip), split_captions)
            for item_id, text in row.text_ids(prefix)
        ]
    cells = {
        modality: (
            column(task, modality),
            _stripped(row.cells[modality], strip and modality == "text"),
        )
        for modality in side
    }
    return [RawItem.read(f"{prefix}-{row.key}", cells)]


def _stripped(value: Any, strip: bool) -> Any:
    return value.strip() if strip and isinstance(value, str) else value


def _query_groups(
    protocol: RetrievalProtocol, subset_of: dict[str, str] | None, qrels: Qrels, ids: list[str]
) -> dict[str, list[str]]:
    """``default`` with every query of ``ids``, then each subset the protocol asks for with
    its queries (``subset_of`` maps an id to its subset)."""
    groups = {"default": ids}
    if protocol.subsets is not None and subset_of is not None:
        groups |= _subset_groups(protocol.subsets, subset_of, qrels, ids)
    return groups


def _subset_groups(
    spec: SubsetSpec, subset_of: dict[str, str], qrels: Qrels, ids: list[str]
) -> dict[str, list[str]]:
    """Subset name -> its queries, in name order; a query may sit in several subsets."""
    groups: dict[str, list[str]] = {}
    for qid in ids:
        members = [qid] if spec.part == "queries" else [d for d, s in qrels[qid].items() if s > 0]
        for name in sorted({subset_of[m] for m in members if m in subset_of}):
            groups.setdefault(name, []).append(qid)
    return dict(sorted(groups.items()))


def _id_column(task: TaskDefinition, part: str, data: datasets.Dataset) -> str:
    """The declared id column, else the first of the part's usual id columns the data has."""
    declared = column(task, "id")
    if declared in data.column_names:
        return declared
    return next((c for c in ID_CANDIDATES[part] if c in data.column_names), declared)


def _unique(
    task: TaskDefinition, split: str, where: str, items: list[RawItem], duplicates: str
) -> list[RawItem]:
    """``items`` with unique ids: a repeated id is an error, or (``duplicates: last``) its
    last row is kept, in the place of its first; ``duplicates: pool`` keeps every row."""
    counts = Counter(item.id for item in items)
    repeated = [item_id for item_id, count in counts.items() if count > 1]
    if not repeated or duplicates == "pool":
        return items
    if duplicates == "error":
        raise _duplicates_error(task, split, where, "id", repeated)
    last = {item.id: item for item in items}
    return list(last.values())


def _duplicates_error(
    task: TaskDefinition, split: str, where: str, what: str, repeated: list[str]
) -> HarnessError:
    """The error for ids or judgments that appear more than once, naming them."""
    shown = ", ".join(map(repr, repeated[:SHOWN_IDS])) + (
        ", ..." if len(repeated) > SHOWN_IDS else ""
    )
    return HarnessError(
        f"task {task.name}: the {where} of split {split!r} repeat {len(repeated)} {what}(s): "
        f"{shown}. Fix the dataset so each appears once, or set `duplicates: last` under "
        "protocol to keep the last row of each (what mteb keeps of a repeated judgment), or "
        "`duplicates: pool` to keep every row of a repeated id and search them as mteb does."
    )


def _known_qrels(
    task: TaskDefinition,
    split: str,
    policy: str,
    qrels: Qrels,
    queries: list[RawItem],
    corpus: list[RawItem],
) -> Qrels:
    """The qrels checked against the queries' and corpus' ids (see the module docstring).

    Only documents judged relevant are checked: one judged 0 that the corpus lacks changes no
    metric (multiple-choice layouts list such candidates and check them themselves).
    """
    query_ids, doc_ids = {q.id for q in queries}, {d.id for d in corpus}
    unknown_queries = sorted(set(qrels) - query_ids)
    judged_relevant = {doc for docs in qrels.values() for doc, score in docs.items() if score > 0}
    unknown_docs = sorted(judged_relevant - doc_ids)
    if (not unknown_queries and not unknown_docs) or policy == "mteb":
        return qrels
    if policy == "drop":
        return {
            qid: {doc: score for doc, score in docs.items() if doc in doc_ids}
            for qid, docs in qrels.items()
            if qid in query_ids
        }
    problems = [
        f"{len(ids)} {kind} id(s) ({', '.join(map(repr, ids[:SHOWN_IDS]))}"
        f"{', ...' if len(ids) > SHOWN_IDS else ''}) that are not {where}"
        for ids, kind, where in (
            (unknown_queries, "query", "among the queries"),
            (unknown_docs, "corpus", "in the corpus"),
        )
        if ids
    ]
    raise HarnessError(
        f"task {task.name}: the qrels of split {split!r} name {' and '.join(problems)}. Fix the "
        "dataset, or set `unknown_qrels: drop` under protocol to drop those judgments "
        "(`unknown_qrels: mteb` keeps them as mteb does: unknown documents then count as "
        "relevant documents that are never retrieved)."
    )


def _raw_items(
    data: datasets.Dataset,
    id_column: str,
    columns: Mapping[str, str],
    title_column: str,
    *,
    strip: bool = False,
    keep_blank_text: bool = False,
) -> Iterable[RawItem]:
    """Rows as raw items with a part per modality of ``columns`` (modality name -> column); a
    ``modality`` column, where present, says which parts an item has (without one, an item of
    a mixed side has whichever parts it holds).

    A document's text is its title and text joined, stripped (``strip``), as mteb reads a corpus.
    A cell that cannot be used makes the item faulty (see ``RawItem.read``); with
    ``keep_blank_text`` a blank text is kept as an empty text part instead.
    """
    has_modality = "modality" in data.column_names
    text_column = columns.get("text")
    has_title = text_column is not None and title_column in data.column_names
    mixed = len(columns) > 1
    for row in data:
        modality = str(row["modality"] or "") if has_modality else ",".join(columns)
        present = [name for name in columns if name in modality]
        if not present:
            parts = " or ".join(f"'{name}'" for name in columns)
            fault = f"column 'modality' holds {modality!r}, which names no {parts} part"
            yield RawItem(str(row[id_column]), fault=f"{fault}; fix the row or drop it")
            continue
        cells = {name: (columns[name], row[columns[name]]) for name in present}
        if "text" in cells:
            text, title = cells["text"][1], row[title_column] if has_title else None
            if isinstance(text, str) and isinstance(title, str) and title:
                text = f"{title} {text}".strip()
            elif isinstance(text, str) and strip:
                text = text.strip()
            cells["text"] = (cells["text"][0], text)
        blank_column = None
        if keep_blank_text and "text" in cells and _is_blank(cells["text"][1]):
            blank_column = cells.pop("text")[0]
        item = RawItem.read(row[id_column], cells, optional=mixed and not has_modality)
        yield item if blank_column is None else _with_blank_text(item, blank_column)


def _is_blank(text: Any) -> bool:
    return isinstance(text, str) and not text.strip()


def _with_blank_text(item: RawItem, text_column: str) -> RawItem:
    """``item`` with an empty text part (read from ``text_column``), unless it is faulty."""
    if item.fault is not None:
        return item
    return RawItem(
        item.id, {**item.parts, "text": ""}, columns={**item.columns, "text": text_column}
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


def _grouped_table(
    task: TaskDefinition, spec: GroupedSpec, split: str
) -> tuple[str, datasets.Dataset]:
    """A grouped layout's config and table."""
    config = resolve_config(task, "pairs", ("default",))
    data = load_part(task, "pairs", config, split)
    if spec.subset_column is not None:
        require_columns(task, data, config, [spec.subset_column])
    return config, data


def _grouped_keys(task: TaskDefinition, spec: GroupedSpec, data: datasets.Dataset) -> list[str]:
    """Each row's key, from its columns that hold no clip or image (nothing is decoded)."""
    media = {column(task, name) for name in (*task.sides.query, *task.sides.document)}
    fields = [c for c in data.column_names if c not in media or c == column(task, "text")]
    rows = undecoded(data.select_columns(fields), fields)
    return [_fill_id(task, spec.id_template, row) for row in rows]


def _grouped_subsets(task: TaskDefinition, spec: GroupedSpec, split: str) -> dict[str, str]:
    """The subset (``subset_column``'s value) of every query and document id."""
    assert spec.subset_column is not None
    _, data = _grouped_table(task, spec, split)
    keys = _grouped_keys(task, spec, data)
    subset_of: dict[str, str] = {}
    for key, value in zip(keys, data[spec.subset_column], strict=True):
        subset_of[f"query-{key}"] = subset_of[f"corpus-{key}"] = str(value)
    return subset_of


def _rows_of(
    data: RetrievalSplit, subset_of: Mapping[str, str], subset: str, limit: int | None
) -> RetrievalSplit:
    """The queries and documents of one subset (their first ``limit`` queries)."""
    queries = [query for query in data.queries if subset_of.get(query.id) == subset]
    corpus = [doc for doc in data.corpus if subset_of.get(doc.id) == subset]
    if limit is not None:
        queries, corpus = _limit(queries, corpus, data.qrels, limit)
    return RetrievalSplit(queries, corpus, {query.id: data.qrels[query.id] for query in queries})


def _fill_id(task: TaskDefinition, template: str, row: Mapping[str, Any]) -> str:
    """``template`` filled with a row's columns; a clear error naming a missing one."""
    try:
        return template.format(**row)
    except (KeyError, IndexError, AttributeError) as error:
        raise HarnessError(
            f"task {task.name}: grouped.id_template {template!r} names {error}, which the rows "
            f"do not have (columns: {', '.join(row)})"
        ) from None


def _hashable(captions: str | list[str] | None) -> str | tuple[str, ...] | None:
    return tuple(captions) if isinstance(captions, list) else captions


def _kept_ids(items: list[RawItem], kept: np.ndarray) -> list[str]:
    return [item.id for item, keep in zip(items, kept, strict=True) if keep]
