"""The lowest layer: errors, items, modalities, the adapter and encoder contracts, similarity."""
