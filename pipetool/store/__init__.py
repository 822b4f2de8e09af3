"""Local state under `.pipetool/`: the SQLite store, the lock file and the project lock."""
