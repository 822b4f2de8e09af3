"""Sweeps: many runs of one pipeline over a space of param values (SPEC §10)."""
