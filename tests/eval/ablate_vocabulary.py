#!/usr/bin/env python3
"""Per-group vocabulary ablation: for each synonym group of corpus/vocabulary.toml, runs
`guidebot eval` with that group removed and prints how hit@1, MRR and fact@3 move on each set
against the full vocabulary. Decisions are made on the dev sets; held-out figures are reported,
never tuned on.

Usage (repository root, after `cargo build --release`):
    python3 tests/eval/ablate_vocabulary.py [--with DIR ...] --questions FILE [--questions FILE ...]
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

BINARY = "target/release/guidebot"


def run_eval(corpus_dir, args):
    output = subprocess.run(
        [BINARY, "--corpus", corpus_dir, "eval", "--json", "--no-baseline", *args],
        check=True, capture_output=True, text=True,
    ).stdout
    report = json.loads(output)
    return {
        s["set"]: (s["guidebot"]["retrieval"]["hit_at_1"], s["guidebot"]["retrieval"]["mrr"],
                   s["guidebot"]["retrieval"]["fact_at_3"])
        for s in report["sets"]
    }


def main():
    args = sys.argv[1:]
    source = open("corpus/vocabulary.toml", encoding="utf-8").read()
    # Each group is a "[[synonyms]]" block up to the next blank line.
    blocks = list(re.finditer(r"\[\[synonyms\]\]\nterms = \[.*?\]\n", source, re.S))
    full = run_eval("corpus", args)
    print("full vocabulary:", {k: tuple(round(v, 3) for v in vals) for k, vals in full.items()})
    print("group\tset\tΔhit@1\tΔMRR\tΔfact@3")
    for block in blocks:
        first_term = re.search(r'"([^"]+)"', block.group(0)).group(1)
        with tempfile.TemporaryDirectory() as work:
            corpus = os.path.join(work, "corpus")
            shutil.copytree("corpus", corpus)
            with open(os.path.join(corpus, "vocabulary.toml"), "w", encoding="utf-8") as out:
                out.write(source[: block.start()] + source[block.end():])
            ablated = run_eval(corpus, args)
        for name, (hit, mrr, fact) in ablated.items():
            base = full[name]
            print(f"{first_term}\t{os.path.basename(name)}\t{hit - base[0]:+.3f}\t{mrr - base[1]:+.3f}\t{fact - base[2]:+.3f}")


if __name__ == "__main__":
    main()
