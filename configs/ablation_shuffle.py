"""Table 3: ShuffleNet with and without channel shuffle, g3 and g8 at 1x, 0.5x, 0.25x.

  python main.py --config=configs/ablation_shuffle.py       # the finding: 0.25x g3, 6 seeds/arm
  python main.py --config=configs/ablation_shuffle.py:quick           # every row, 40 steps
  python main.py --config=configs/ablation_shuffle.py:proxy --workdir=runs/ablation_shuffle-proxy
  python main.py --config=configs/ablation_shuffle.py:proxy --worker=0/2   # and 1/2 elsewhere

Runs go to <workdir>/runs/<run id>/, the table to <workdir>/results/ablation_shuffle.md|csv|png
(default workdir: runs/ablation_shuffle-<preset>). Budgets: see configs/sweeps.py.
"""

from configs import sweeps

AXES = {"width": (1.0, 0.5, 0.25), "groups": (3, 8), "shuffle": (True, False)}


# The default job (`make run`): one row, shuffle vs no shuffle at 0.25x g3, 6 vmapped seeds
# per arm. g3 rather than g8 (the paper's larger gain) because a g8 step costs twice a g3
# one on 2 CPU cores: 0.25x g8 at this budget took 12.7 minutes with the set-up (shuffle
# 32.79% vs no shuffle 27.94% error, gap -4.85 [-9.28, -0.42] points, p=0.037, n=6 pairs).
FINDING_AXES = {"width": (0.25,), "groups": (3,), "shuffle": (True, False)}


def get_config(arg: str | None = None):
  preset = arg or "finding"
  return sweeps.sweep_config("ablation_shuffle",
                             FINDING_AXES if preset == "finding" else AXES, preset)
