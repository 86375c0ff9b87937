"""HTML reports rendered from the store (read-only)."""
