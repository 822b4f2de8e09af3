"""Every site's statistics -> one table and the overall metrics (the fan-in)."""
import json
import sys
from pathlib import Path


def main(stats_dir: str, table: str, metrics: str) -> None:
    rows = [json.loads(p.read_text()) for p in sorted(Path(stats_dir).glob("*.json"))]
    lines = ["site,n,min,max,mean"] + [f"{r['site']},{r['n']},{r['min']},{r['max']},{r['mean']}" for r in rows]
    Path(table).write_text("\n".join(lines) + "\n")
    overall = {"sites": len(rows), "hottest": max(rows, key=lambda r: r["max"])["site"] if rows else None,
               "mean_of_means": round(sum(r["mean"] for r in rows) / len(rows), 3) if rows else None}
    Path(metrics).write_text(json.dumps(overall, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
