#!/usr/bin/env python3
"""Parameter counts of the thesis presets against the thesis tables.

Prints one row per component: our count, the thesis' count, the difference, and the erratum that explains
the architecture (or any difference).  Exit status 1 if a count is outside the thesis' rounding
(0.05M or 1%, whichever is larger).

    python scripts/count_params.py [--preset pgpg_thesis ...]
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from fashion_gans.models import build_models, count_parameters
    from fashion_gans.models.config import THESIS_PARAMETER_COUNTS, THESIS_TOTALS, thesis_tolerance

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", help="only these thesis presets (repeatable)")
    args = parser.parse_args(argv)
    presets = args.preset or list(THESIS_TOTALS)
    unknown = sorted(set(presets) - set(THESIS_TOTALS))
    if unknown:
        parser.error(f"not a thesis preset: {unknown}; choose from {sorted(THESIS_TOTALS)}")

    header = f"{'component':<24} {'ours (M)':>10} {'thesis (M)':>11} {'diff (M)':>9}  ok  note"
    print(header)
    print("-" * len(header))
    failed = False
    for preset in presets:
        models = build_models(preset)
        for row in (r for r in THESIS_PARAMETER_COUNTS if r.preset == preset):
            role, _, attr = row.component.partition(".")
            module = models[role]
            for part in filter(None, attr.split(".")):
                module = getattr(module, part)
            ours = count_parameters(module) / 1e6
            diff = ours - row.stated_millions
            ok = abs(diff) <= thesis_tolerance(row.stated_millions)
            failed |= not ok
            flag = "yes" if ok else "NO "
            print(f"{row.label:<24} {ours:>10.2f} {row.stated_millions:>11.1f} {diff:>+9.2f}  {flag:<3} {row.note}")
        total = sum(count_parameters(m) for m in models.values()) / 1e6
        stated = THESIS_TOTALS[preset]
        diff = total - stated
        ok = abs(diff) <= thesis_tolerance(stated)
        failed |= not ok
        print(f"{preset + ' total':<24} {total:>10.2f} {stated:>11.1f} {diff:>+9.2f}  {'yes' if ok else 'NO ':<3}")
        print()
        del models
    print("ok: within the thesis' rounding (0.05M) or 1%, whichever is larger. Notes name the erratum "
          "(thesis-spec §8) whose reading fixes the architecture.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
