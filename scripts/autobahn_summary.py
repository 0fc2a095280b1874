#!/usr/bin/env python3
"""Summarise kosoku (Autobahn TestSuite) reports and fail on any case that did not pass.

Usage: autobahn_summary.py LABEL REPORT_DIR...

Each REPORT_DIR holds an index.json: {agent: {case_id: {behavior, behaviorClose, ...}}}.
A case passes when both verdicts are OK, NON-STRICT or INFORMATIONAL. Prints one summary
line, lists the failing cases, exits 1 if there are any (or if no case ran at all).
"""

import json
import sys
from collections import Counter
from pathlib import Path

PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}


def case_key(case_id: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in case_id.split("."))


def main() -> int:
    label, dirs = sys.argv[1], sys.argv[2:]
    verdicts: dict[str, dict] = {}
    for d in dirs:
        index = Path(d) / "index.json"
        if not index.exists():
            print(f"autobahn {label}: missing report {index}", file=sys.stderr)
            return 1
        for cases in json.loads(index.read_text()).values():
            verdicts.update(cases)
    counts = Counter(v["behavior"] for v in verdicts.values())
    failing = sorted(
        (c for c, v in verdicts.items()
         if v["behavior"] not in PASSING or v["behaviorClose"] not in PASSING),
        key=case_key,
    )
    summary = ", ".join(f"{n} {b}" for b, n in sorted(counts.items()))
    print(f"Autobahn {label}: {len(verdicts)} cases: {summary}; {len(failing)} failing")
    for c in failing:
        v = verdicts[c]
        print(f"  FAIL {c}: behavior={v['behavior']} close={v['behaviorClose']} "
              f"remoteCloseCode={v.get('remoteCloseCode')}")
    return 1 if failing or not verdicts else 0


if __name__ == "__main__":
    sys.exit(main())
