"""Pure metric functions: arrays in, metrics out."""
