"""`pipetool sweep show`: a sweep's points, each with its latest run, its swept params and
its metrics' numeric leaves, in the sweep's order or sorted by a metric (SPEC §10).

`sweep_table` is the JSON (`{"id", "base", "status", "keys", "fixed", "points": [{"run",
"status", "params", "metrics"}]}`); `render_table` the text a person reads.
"""
from __future__ import annotations

import math
import sqlite3
from typing import Any

from ..errors import UsageError
from ..jsontext import dumps
from ..store import runs as store_runs
from .space import Space

UNFINISHED = ("interrupted", "not-run")


def sweep_table(conn: sqlite3.Connection, sweep_id: str, sort: str | None = None) -> dict[str, Any]:
    """The sweep's points with the latest run of each (a point never run: `run` null,
    status `not-run`), sorted by `sort` (`FILE:KEY` highest first, `-FILE:KEY` lowest first)."""
    return numbered_table(conn, sweep_id, sort)[0]


def numbered_table(conn: sqlite3.Connection, sweep_id: str, sort: str | None = None
                   ) -> tuple[dict[str, Any], list[int]]:
    """`sweep_table`, and each listed point's number in the sweep (1-based)."""
    from .runner import run_point_id

    rec = store_runs.sweep_record(conn, sweep_id)
    space = Space.from_json(rec["space"])
    keys = space.keys
    latest: dict[str, dict[str, Any]] = {}
    for r in store_runs.sweep_runs(conn, sweep_id):  # oldest first: the last one wins
        latest[run_point_id(r, keys)] = r
    points = []
    for pt in space.points():
        last = latest.get(pt.id)
        points.append({"run": last["id"] if last else None, "status": last["status"] if last else "not-run",
                       "params": pt.values, "metrics": numeric_leaves(last["metrics"]) if last else {}})
    statuses = [p["status"] for p in points]
    if rec["status"] == "running" or "running" in statuses:
        status = "running"
    elif any(s in UNFINISHED for s in statuses):
        status = "interrupted"
    else:
        status = "failed" if "failed" in statuses else "succeeded"
    numbered = list(enumerate(points, 1))
    if sort:
        numbered = sort_points(numbered, sort)
    return ({"id": rec["id"], "base": rec["base"], "status": status, "keys": keys, "fixed": space.fixed,
             "points": [p for _, p in numbered]}, [n for n, _ in numbered])


def numeric_leaves(metrics: dict[str, Any]) -> dict[str, dict[str, int | float]]:
    """{FILE: {KEY: number}}: each metrics file's numbers, nested keys dotted (`val.acc`)."""
    out: dict[str, dict[str, int | float]] = {}
    for f, content in metrics.items():
        leaves: dict[str, int | float] = {}
        _leaves("", content, leaves)
        if leaves:
            out[f] = leaves
    return out


def _leaves(prefix: str, value: Any, into: dict[str, int | float]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _leaves(f"{prefix}.{k}" if prefix else str(k), v, into)
    elif prefix and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        into[prefix] = value


def sort_points(points: list[tuple[int, dict[str, Any]]], spec: str) -> list[tuple[int, dict[str, Any]]]:
    """By the metric `FILE:KEY`, highest first (`-FILE:KEY`: lowest first); the points
    without it last, in their order. A metric no point has is an error naming those there are."""
    lowest = spec.startswith("-")
    text = spec[1:] if lowest else spec
    known = sorted({(f, k) for _, p in points for f, leaves in p["metrics"].items() for k in leaves})
    found = [(f, k) for f, k in known if text == f"{f}:{k}"]
    if not found:
        shown = ", ".join(f"{f}:{k}" for f, k in known[:20]) + (" …" if len(known) > 20 else "")
        if ":" not in text:
            raise UsageError(f"--sort {spec}: give FILE:KEY, a metrics file and a key in it"
                             + (f" (one of {shown})" if known else ""))
        raise UsageError(f"--sort {spec}: no point has that metric" + (f"; they have {shown}" if known
                                                                       else "; no point has metrics yet"))
    f, k = found[0]
    having = [np for np in points if k in np[1]["metrics"].get(f, {})]
    rest = [np for np in points if k not in np[1]["metrics"].get(f, {})]
    having.sort(key=lambda np: np[1]["metrics"][f][k], reverse=not lowest)
    return having + rest


def short_ids(ids: list[str], among: list[str]) -> dict[str, str]:
    """Each id's shortest prefix (at least 4 characters) that no other id in `among` shares."""
    pool = sorted(set(among) | set(ids))
    where = {rid: i for i, rid in enumerate(pool)}
    out: dict[str, str] = {}
    for rid in ids:
        i = where[rid]
        need = 0
        for j in (i - 1, i + 1):
            if 0 <= j < len(pool):
                other = pool[j]
                n = 0
                while n < min(len(rid), len(other)) and rid[n] == other[n]:
                    n += 1
                need = max(need, n + 1)
        out[rid] = rid[:max(store_runs.MIN_PREFIX, need)]
    return out


def render_table(table: dict[str, Any], numbers: list[int], short: dict[str, str] | None = None) -> str:
    """The table a person reads: a line per point (`numbers`: their places in the sweep),
    its run, status, params and metrics."""
    short = short or {}
    keys = table["keys"]
    metrics = sorted({(f, k) for p in table["points"] for f, leaves in p["metrics"].items() for k in leaves})
    names = [k for _, k in metrics]
    heads = ["#", "run", "status", *keys, *(k if names.count(k) == 1 else f"{f}:{k}" for f, k in metrics)]
    rows = []
    for n, p in zip(numbers, table["points"]):
        run = p["run"]
        rows.append([str(n), short.get(run, run[:8]) if run else "-", p["status"],
                     *(_cell(p["params"].get(k, "")) for k in keys),
                     *(_cell(p["metrics"].get(f, {}).get(k)) for f, k in metrics)])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(heads)]
    fixed = ", ".join(f"{k}={_cell(v)}" for k, v in table["fixed"].items())
    title = (f"sweep {table['id']}  {table['status']}  {len(table['points'])} point(s)"
             f"  base {table['base'] or '-'}" + (f"  fixed {fixed}" if fixed else ""))
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(heads, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else dumps(value, default=str)


def show_text(conn: sqlite3.Connection, sweep_id: str, sort: str | None = None) -> str:
    """`sweep show` as text: the table, run ids as their shortest unique prefixes."""
    table, numbers = numbered_table(conn, sweep_id, sort)
    ids = [p["run"] for p in table["points"] if p["run"]]
    return render_table(table, numbers, short_ids(ids, store_runs.run_ids(conn)))
