"""Table 3: ShuffleNet with and without channel shuffle, g3 and g8 at 1x, 0.5x, 0.25x.

  python main.py --config=configs/ablation_shuffle.py                 # quick budget, CPU minutes
  python main.py --config=configs/ablation_shuffle.py:proxy --workdir=runs/ablation_shuffle-proxy
  python main.py --config=configs/ablation_shuffle.py:proxy --worker=0/2   # and 1/2 elsewhere

Runs go to <workdir>/runs/<run id>/, the table to <workdir>/results/ablation_shuffle.md|csv|png
(default workdir: runs/ablation_shuffle-<preset>). Budgets: see configs/sweeps.py.
"""

from configs import sweeps

AXES = {"width": (1.0, 0.5, 0.25), "groups": (3, 8), "shuffle": (True, False)}


def get_config(arg: str | None = None):
  return sweeps.sweep_config("ablation_shuffle", AXES, arg)
