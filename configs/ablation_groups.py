"""Table 2: classification error vs number of groups g at widths 1x, 0.5x, 0.25x.

  python main.py --config=configs/ablation_groups.py                 # quick budget, CPU minutes
  python main.py --config=configs/ablation_groups.py:proxy --workdir=runs/ablation_groups-proxy
  python main.py --config=configs/ablation_groups.py:proxy --worker=0/2   # and 1/2 elsewhere

Runs go to <workdir>/runs/<run id>/, the table to <workdir>/results/ablation_groups.md|csv|png
(default workdir: runs/ablation_groups-<preset>). Budgets: see configs/sweeps.py.
"""

from configs import sweeps

AXES = {"width": (1.0, 0.5, 0.25), "groups": (1, 2, 3, 4, 8)}


def get_config(arg: str | None = None):
  return sweeps.sweep_config("ablation_groups", AXES, arg)
