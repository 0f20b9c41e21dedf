"""The back end: torch + transformers. Imported lazily by the CLI."""
