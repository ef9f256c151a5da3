"""Error against complexity: width 0.25x..2x at g3 and g8.

  python main.py --config=configs/ablation_width.py                 # quick budget, CPU minutes
  python main.py --config=configs/ablation_width.py:proxy --workdir=runs/ablation_width-proxy
  python main.py --config=configs/ablation_width.py:proxy --worker=0/2   # and 1/2 elsewhere

Runs go to <workdir>/runs/<run id>/, the table to <workdir>/results/ablation_width.md|csv|png
(default workdir: runs/ablation_width-<preset>). Budgets: see configs/sweeps.py.
"""

from configs import sweeps

AXES = {"width": (0.25, 0.5, 1.0, 1.5, 2.0), "groups": (3, 8)}


def get_config(arg: str | None = None):
  return sweeps.sweep_config("ablation_width", AXES, arg)
