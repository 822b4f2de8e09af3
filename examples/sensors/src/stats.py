"""One site's readings -> its daily statistics (a partition of `stats`: one per CSV file)."""
import csv
import json
import statistics
from pathlib import Path


def daily_stats(item: str, outs: list[Path]) -> None:
    with open(item, newline="") as f:
        temps = [float(row["temperature"]) for row in csv.DictReader(f)]
    stats = {"site": Path(item).stem, "n": len(temps), "min": min(temps), "max": max(temps),
             "mean": round(statistics.fmean(temps), 3)}
    outs[0].parent.mkdir(parents=True, exist_ok=True)
    outs[0].write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")
