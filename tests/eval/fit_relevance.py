#!/usr/bin/env python3
"""Fits guidebot's relevance gate on the DEV sets: a logistic model over scale-free features of a
search (see `RelevanceFeatures` in src/search/mod.rs), answerable questions as positives and
off-topic ones as negatives. Prints the coefficients to paste into src/search/relevance.rs.

Never run it on held-out sets. Usage (from the repository root, after `cargo build --release`):

    B=target/release/guidebot
    $B eval --json --no-baseline --questions tests/eval/dev.toml > /tmp/dev-1.json
    $B eval --json --no-baseline --with tests/corpora/ml-interviews-alirezadir \
        --with tests/corpora/ds-interviews-grigorev --questions tests/eval/dev.toml \
        --questions tests/eval/dev-ml-interviews-alirezadir.toml \
        --questions tests/eval/dev-ds-interviews-grigorev.toml > /tmp/dev-3.json
    python3 tests/eval/fit_relevance.py /tmp/dev-1.json /tmp/dev-3.json

Pure Python (no numpy): a few hundred rows and five features.
"""
import json
import math
import sys


def features(f):
    """The model's inputs; keep in step with `RelevanceModel::score` in src/search/relevance.rs."""
    return [
        f["coverage"],
        f["unknown_share"],
        min(f["matched_rarity"], 4.0) / 4.0,
    ]


NAMES = ["coverage", "unknown_share", "matched_rarity/4 (capped at 4)"]


def load(paths):
    rows = []
    for path in paths:
        report = json.load(open(path))
        for set_report in report["sets"]:
            if "heldout" in set_report["set"]:
                sys.exit(f"refusing to fit on a held-out set: {set_report['set']}")
            ours = set_report["guidebot"]
            for outcome in ours["outcomes"]:
                if outcome["features"]:
                    rows.append((features(outcome["features"]), 1))
            for outcome in ours["off_topic_outcomes"]:
                if outcome["features"]:
                    rows.append((features(outcome["features"]), 0))
                else:
                    rows.append(([0.0] * len(NAMES), 0))
    return rows


def fit(rows, l2=0.01, rate=0.5, rounds=20000):
    positives = sum(label for _, label in rows)
    negatives = len(rows) - positives
    # Off-topic questions are fewer: weigh the classes equally.
    weight = {1: len(rows) / (2 * positives), 0: len(rows) / (2 * negatives)}
    w = [0.0] * len(NAMES)
    b = 0.0
    for _ in range(rounds):
        grad_w = [0.0] * len(w)
        grad_b = 0.0
        for x, y in rows:
            z = b + sum(wi * xi for wi, xi in zip(w, x))
            p = 1 / (1 + math.exp(-z))
            error = (p - y) * weight[y]
            grad_b += error
            for i, xi in enumerate(x):
                grad_w[i] += error * xi
        n = len(rows)
        b -= rate * grad_b / n
        w = [wi - rate * (gi / n + l2 * wi) for wi, gi in zip(w, grad_w)]
    return w, b


def main():
    rows = load(sys.argv[1:])
    w, b = fit(rows)
    print(f"{len(rows)} rows ({sum(l for _, l in rows)} answerable)")
    for name, value in zip(NAMES, w):
        print(f"  {name:<28} {value:+.3f}")
    print(f"  {'intercept':<28} {b:+.3f}")
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7):
        kept = [1 / (1 + math.exp(-(b + sum(wi * xi for wi, xi in zip(w, x))))) >= threshold for x, _ in rows]
        false_refusal = sum(1 for k, (_, y) in zip(kept, rows) if y == 1 and not k) / max(1, sum(y for _, y in rows))
        rejection = sum(1 for k, (_, y) in zip(kept, rows) if y == 0 and not k) / max(1, sum(1 - y for _, y in rows))
        print(f"  p >= {threshold}: off-topic rejection {rejection:.3f}, answerable false refusal {false_refusal:.3f}")


if __name__ == "__main__":
    main()
