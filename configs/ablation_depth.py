"""Table 5's shallow row: standard vs shallow (2/4/2 units) ShuffleNet 0.5x g3.

  python main.py --config=configs/ablation_depth.py                 # quick budget, CPU minutes
  python main.py --config=configs/ablation_depth.py:proxy --workdir=runs/ablation_depth-proxy
  python main.py --config=configs/ablation_depth.py:proxy --worker=0/2   # and 1/2 elsewhere

Runs go to <workdir>/runs/<run id>/, the table to <workdir>/results/ablation_depth.md|csv|png
(default workdir: runs/ablation_depth-<preset>). Budgets: see configs/sweeps.py.
"""

from configs import sweeps

AXES = {"width": (0.5,), "groups": (3,), "depth": ("standard", "shallow")}


def get_config(arg: str | None = None):
  return sweeps.sweep_config("ablation_depth", AXES, arg)
