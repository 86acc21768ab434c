"""Task types and declarative task definitions."""
