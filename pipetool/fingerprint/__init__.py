"""Fingerprints: what a target's code, params, deps and env are now, as content hashes.

`trace` makes a target's `Trace` from the workspace; `hashing` hashes files, folders and
globs behind the stat cache; `codehash`, `pyast` and `pkgversions` read a callable's code
closure from source.
"""
