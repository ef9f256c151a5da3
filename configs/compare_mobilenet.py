"""Table 5: ShuffleNet against MobileNet v1 at matched complexity, with the SE and
shallow rows.

  python main.py --config=configs/compare_mobilenet.py             # quick budget, CPU minutes
  python main.py --config=configs/compare_mobilenet.py:proxy --worker=0/2

Runs go to <workdir>/runs/<run id>/, the table to
<workdir>/results/compare_mobilenet.md|csv|png (default workdir:
runs/compare_mobilenet-<preset>). Budgets: see configs/sweeps.py.
"""

from configs import sweeps
from shufflenet_jax import paper

AXES = {"model": tuple(paper.table5_models())}


def get_config(arg: str | None = None):
  return sweeps.sweep_config("compare_mobilenet", AXES, arg)
