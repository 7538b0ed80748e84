"""RELIABILITY.md's table from the bad-input corpus log.

    DUPSEARCH_BAD_INPUT_LOG=/tmp/bad.jsonl python -m pytest tests/test_bad_input.py
    python tests/reliability_table.py /tmp/bad.jsonl
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict

CLASSES = {1: "never destroy what is not ours", 2: "loading a model runs no code", 3: "resume trusts nothing",
           4: "garbage does not decide", 5: "no tracebacks"}
OUTCOMES = ["clear error", "handled", "unclear error", "traceback", "silent loss", "wrong result"]


def main(path: str) -> None:
    by = defaultdict(Counter)
    for line in open(path, encoding="utf-8"):
        r = json.loads(line)
        by[r["class"]][r["outcome"]] += 1
    print("| class | tried | " + " | ".join(OUTCOMES) + " |")
    print("|---|---|" + "---|" * len(OUTCOMES))
    total = Counter()
    for k in sorted(by):
        c = by[k]
        total.update(c)
        print(f"| {k}. {CLASSES.get(k, '?')} | {sum(c.values())} | " + " | ".join(str(c[o]) for o in OUTCOMES) + " |")
    print(f"| all | {sum(total.values())} | " + " | ".join(str(total[o]) for o in OUTCOMES) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
