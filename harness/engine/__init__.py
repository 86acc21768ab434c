"""The engine: encoding, the embedding cache, sharding, result files."""
