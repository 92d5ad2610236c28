"""The 6/4 open-set records side by side: bench/results/open_set.json.

Reads every `open_set-NAME.json` that `bench/open_set.py` wrote (one training method each) and
writes one table: per record, its command, closed-set accuracy per split, and the mean AUROC /
FPR95 over its splits of every score on the 4 unseen classes and on each far set; then the best
score on the unseen classes. Trains nothing: run it after `bench/open_set.py`.

    python bench/open_set_table.py
"""

from __future__ import annotations

import argparse
import json

import record

NEAR = "near (4 unknown classes)"


def method_row(name: str, results: dict) -> dict:
    splits = results["splits"]
    return {
        "name": name,
        "command": results["command"],
        "overrides": results.get("overrides", {}),
        "seeds": results.get("seeds", [0]),
        "splits": list(splits),
        "closed_set_accuracy": {split: s["closed_set_accuracy"] for split, s in splits.items()},
        "ensemble_closed_set_accuracy": {split: s["ensemble_closed_set_accuracy"] for split, s in splits.items()
                                         if "ensemble_closed_set_accuracy" in s},
        "mean": results["mean"],
    }


def best_near(rows: list[dict]) -> dict:
    """The record and score with the highest mean AUROC on the unseen classes (two splits or more)."""
    candidates = [(row["mean"][score][NEAR]["auroc"], row["name"], score)
                  for row in rows if len(row["splits"]) > 1 for score in row["mean"]]
    auroc, name, score = max(candidates)
    return {"name": name, "score": score, "auroc": auroc}


def markdown(rows: list[dict]) -> str:
    lines = ["| record | splits | score | 4 unseen AUROC / FPR95 |", "|---|---|---|---|"]
    for row in rows:
        score = max(row["mean"], key=lambda kind: row["mean"][kind][NEAR]["auroc"])
        near = row["mean"][score][NEAR]
        lines.append(f"| {row['name']} | {','.join(row['splits'])} | {score} | "
                     f"{near['auroc']:.3f} / {near['fpr95']:.0%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    record.add_quick_option(parser)
    args = parser.parse_args()
    run = record.begin(args.quick)
    rows = []
    for path in sorted(record.RESULTS.glob("open_set-*.json")):
        results = record.results_of(json.loads(path.read_text()))
        rows.append(method_row(path.stem.removeprefix("open_set-"), results))
    if not rows:
        raise SystemExit("no bench/results/open_set-*.json: run bench/open_set.py first")
    run.write(run.path("open_set.json"), {
        "protocol": "CIFAR10 6/4 (Neal et al. 2018): train on 6 classes, the other 4 unknown",
        "scores": "mean over the record's splits; '+flip' averages an image and its mirror image, "
                  "'(ensemble of N)' N training runs",
        "best_near": best_near(rows), "records": rows})
    print(markdown(rows))


if __name__ == "__main__":
    main()
