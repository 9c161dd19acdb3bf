"""Print mutmut's results as a score per module: killed / (killed + survived), from ``mutmut results --all true``.

Mutants with no covering test ("no tests") count as survivors; timeouts and crashes (segfaults) count as killed,
since the tests noticed them. Mutants not run yet are left out and counted apart.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict

KILLED = {"killed", "timeout", "segfault", "suspicious"}
SURVIVED = {"survived", "no tests"}


def module_of(mutant: str) -> str:
    """``htr.decode.beam.xǁBeamDecoderǁdecode__mutmut_3`` -> ``htr.decode.beam``."""
    return re.split(r"\.x(?:ǁ|_)", mutant.split("__mutmut_")[0], maxsplit=1)[0]


def main() -> int:
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for line in out.splitlines():
        name, _, status = line.strip().partition(": ")
        if name:
            counts[module_of(name)][status] += 1
    print(f"{'module':32} {'killed':>7} {'survived':>8} {'score':>6} {'not run':>8}")
    total: Counter[str] = Counter()
    for module in sorted(counts):
        c = counts[module]
        killed = sum(c[s] for s in KILLED)
        survived = sum(c[s] for s in SURVIVED)
        total.update(killed=killed, survived=survived)
        score = f"{killed / (killed + survived):.0%}" if killed + survived else "-"
        print(f"{module:32} {killed:7d} {survived:8d} {score:>6} {c.total() - killed - survived:8d}")
    k, s = total["killed"], total["survived"]
    print(f"{'total':32} {k:7d} {s:8d} {k / max(k + s, 1):6.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
