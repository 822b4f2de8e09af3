"""Sharing builds beyond one machine: a remote cache through fsspec (SPEC §8)."""
