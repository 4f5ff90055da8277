"""Adapters: one module per outside thing (PostgreSQL, MessageBird, console, Redis, Sentry)."""
