"""The embedded offline demo benchmark: synthetic scenes of coloured shapes with captions.

``shapes`` generates scenes and renders them; ``build`` writes the retrieval datasets that
ship under ``tasks/demo/data/``.
"""
