"""Benchmarks: harness against mteb side by side, and retrieval cost as the corpus grows."""
