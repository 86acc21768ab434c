"""Documents that are a page plus its text: the parts of each that an adapter embeds.

A task whose documents carry an image and a text (category ``t2it``: ViDoRe v3.1's page images
with their OCR'ed markdown) is run as the adapter's ``meta.document_parts`` says: ``fused``
keeps both parts (the family fuses them as mteb's wrapper does), ``image`` or ``text`` keeps that
part alone. The other part is dropped before encoding, so it is never decoded, and an item's
cache key is that of the parts it keeps. A text-only model runs such a task on the texts alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from harness.core.adapter import PAGE_TEXT, AdapterMeta, embeddable_parts, kept_parts
from harness.core.items import RawItem


def page_text_side(side: Iterable[str]) -> bool:
    """Whether a side of a category (its modality names) has both images and texts."""
    return set(side) >= PAGE_TEXT


def embeddable_side(side: Iterable[str], modalities: Iterable[str]) -> frozenset[str]:
    """The modalities of a document ``side`` that a model embedding ``modalities`` needs: a
    page-plus-text side needs only the page or the text when the model embeds only one."""
    parts, embedded = frozenset(side), frozenset(modalities)
    if page_text_side(parts) and PAGE_TEXT & embedded:
        return parts - (PAGE_TEXT - embedded)
    return parts


def document_items(
    items: Sequence[RawItem], side: Iterable[str], meta: AdapterMeta
) -> list[RawItem]:
    """``items`` (documents of a side with modalities ``side``) with the parts the adapter does
    not embed dropped; unchanged unless the side has both images and texts.

    An item left with no part (a page without text, for a model that embeds the text) becomes
    a faulty item, which the encoder reports as bad input (or skips under --skip-bad-inputs).
    """
    mode = meta.document_parts or embeddable_parts(meta.modalities)
    if mode is None or not page_text_side(side):
        return list(items)
    dropped = PAGE_TEXT - kept_parts(mode)
    return [_kept(item, dropped, mode, meta.name) for item in items]


def _kept(item: RawItem, dropped: frozenset[str], mode: str, model: str) -> RawItem:
    """The item without its ``dropped`` parts."""
    if item.fault is not None or not dropped & set(item.parts):
        return item
    parts = {name: value for name, value in item.parts.items() if name not in dropped}
    if parts:
        return RawItem(item.id, parts, columns=item.columns)
    held = " and ".join(sorted(item.parts))
    return RawItem(
        item.id,
        fault=(
            f"the document has only {held}, and model {model} embeds the {mode} of documents "
            f"with a page and a text (document_parts: {mode})"
        ),
        columns=item.columns,
    )
