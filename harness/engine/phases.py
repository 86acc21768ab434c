"""Where a split's time went: its :class:`~harness.engine.records.PhasesRecord`."""

from __future__ import annotations

from collections.abc import Mapping

from harness.engine.records import PhasesRecord

# Seconds are recorded to the tenth of a millisecond.
_DECIMALS = 4


def split_phases(
    *, load: float, encoder_times: Mapping[str, float], items_encoded: int, total: float
) -> PhasesRecord:
    """The phases of a split that took ``total`` seconds: ``load`` reading its data, the
    encoder's ``decode``, ``encode`` and ``model_load`` seconds over the split
    (``EncodeTimes.since``), and the rest scoring."""
    decode = encoder_times.get("decode", 0.0)
    encode = encoder_times.get("encode", 0.0)
    model_load = encoder_times.get("model_load", 0.0)
    score = max(total - load - decode - encode - model_load, 0.0)
    return PhasesRecord(
        load=round(load, _DECIMALS),
        model_load=round(model_load, _DECIMALS),
        decode=round(decode, _DECIMALS),
        encode=round(encode, _DECIMALS),
        score=round(score, _DECIMALS),
        total=round(total, _DECIMALS),
        items_encoded=items_encoded,
        items_per_second=round(items_encoded / encode, 2) if items_encoded and encode else None,
    )
