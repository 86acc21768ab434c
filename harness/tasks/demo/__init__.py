"""The embedded offline demo benchmark: synthetic scenes of coloured shapes with captions, and
synthetic sounds (spoken words, tones, noises) with captions.

``shapes`` generates scenes and renders them, ``sounds`` synthesises clips (espeak-ng, sox);
``build``, ``audio`` and the other modules write the datasets that ship under
``harness/tasks/demo/data/`` (``python -m harness.tasks.demo harness/tasks/demo/data``).
"""
