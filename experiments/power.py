"""How many seeds an ablation needs: power of the paired (or Welch) t-test.

  python -m experiments.power --sd 0.4 --delta 0.3              # seeds to detect 0.3 points
  python -m experiments.power --sd 0.4 --n 6                    # what 6 seeds can detect
  python -m experiments.power --records results/records/ablation_shuffle --delta 0.3

``--sd`` is the seed-to-seed sd of the per-seed differences between the two arms (paired
design: the same seed gives both arms the same data order, augmentation and, where shapes
agree, initialization) or, with ``--unpaired``, of each arm. ``--records`` measures it from a
sweep's run records, pooled over the table's comparisons (experiments/tables.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments import stats


def measured_sd(sweep_dir: Path) -> tuple[float, int, bool, float | None]:
  """(sd, n, paired, r) pooled over the comparisons of the sweep's table; r: the arms'
  per-seed correlation (stats.pooled_r; None for an unpaired table)."""
  from experiments import tables
  name = sweep_dir.name
  records = tables.load_records(sweep_dir)
  if not records:
    raise ValueError(f"--records={sweep_dir}: no <run id>/result.json under it")
  done = [g for g in tables.comparisons(name, records) if g is not None]
  pooled = stats.pooled_sd(done)
  if pooled is None:
    raise ValueError(f"--records={sweep_dir}: no comparison has two or more seeds")
  paired = all(g.test == "paired t" for g in done)
  return pooled[0], pooled[1], paired, stats.pooled_r(done) if paired else None


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(prog="python -m experiments.power", description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  src = ap.add_mutually_exclusive_group(required=True)
  src.add_argument("--sd", type=float, help="sd (points) of the per-seed differences")
  src.add_argument("--records", help="a sweep's records directory, e.g. "
                   "results/records/ablation_shuffle (its name is the sweep's)")
  ap.add_argument("--delta", type=float, help="the gap (points) to detect")
  ap.add_argument("--n", type=int, help="seeds per arm: report the minimal detectable gap")
  ap.add_argument("--unpaired", action="store_true", help="Welch design (sd of each arm)")
  ap.add_argument("--alpha", type=float, default=stats.ALPHA, help="two-sided level (0.05)")
  ap.add_argument("--power", type=float, default=stats.POWER, help="target power (0.8)")
  args = ap.parse_args(argv)
  try:
    for name, value, ok in (("--alpha", args.alpha, 0 < args.alpha < 1),
                            ("--power", args.power, 0 < args.power < 1),
                            ("--delta", args.delta, args.delta is None or args.delta > 0),
                            ("--n", args.n, args.n is None or args.n >= 2),
                            ("--sd", args.sd, args.sd is None or args.sd >= 0)):
      if not ok:
        raise ValueError(f"{name}={value}: valid: " + {
            "--n": "an integer >= 2", "--sd": "a value >= 0", "--delta": "a value > 0"}.get(
                name, "a value in (0, 1)"))
    paired = not args.unpaired
    if args.records:
      sd, n_measured, paired, r = measured_sd(Path(args.records))
      print(f"{args.records}: sd of the {'per-seed differences' if paired else 'cells'} "
            f"{sd:.3f} points, pooled over the table's comparisons (n={n_measured} seeds)")
      if r is not None:
        print(f"the arms' per-seed values correlate r = {r:+.2f}: the paired design needs "
              f"{1 - r:.2f}x the seeds of an unpaired one")
    else:
      sd, n_measured = args.sd, None
    design = "paired t" if paired else "Welch t"
    n = args.n or n_measured
    if n:
      mdg = stats.minimal_detectable_gap(sd, n, paired, args.alpha, args.power)
      print(f"n={n} seeds per arm: minimal detectable gap {mdg:.3f} points "
            f"({design}, {args.power:.0%} power, {args.alpha:g} two-sided)")
    if args.delta:
      need = stats.seeds_needed(args.delta, sd, paired, args.alpha, args.power)
      print(f"delta={args.delta:g} points: {need if need else 'more than 10000'} seeds per arm "
            f"({design}, {args.power:.0%} power, {args.alpha:g} two-sided)")
    if not n and not args.delta:
      raise ValueError("give --delta (seeds needed) and/or --n (minimal detectable gap)")
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
