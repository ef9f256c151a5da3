"""Table 4: ShuffleNet against other structure units in the same skeleton, at the paper's
complexity levels (140 / 38 / 13 MFLOPs; widths fitted in shufflenet_jax/models/units.py).

  python main.py --config=configs/compare_units.py                 # quick budget, CPU minutes
  python main.py --config=configs/compare_units.py:proxy --worker=0/2   # and 1/2 elsewhere

Runs go to <workdir>/runs/<run id>/, the table to <workdir>/results/compare_units.md|csv|png
(default workdir: runs/compare_units-<preset>). Budgets: see configs/sweeps.py.
"""

from configs import sweeps
from shufflenet_jax import paper

AXES = {"model": tuple(paper.table4_models())}


def get_config(arg: str | None = None):
  return sweeps.sweep_config("compare_units", AXES, arg)
