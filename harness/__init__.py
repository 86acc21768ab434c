"""harness: an evaluation harness for embedding models in the MTEB/MIEB style."""

__version__ = "0.1.0"
