"""Use cases: each takes its adapters as arguments; no globals, no import-time connections."""
