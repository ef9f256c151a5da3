"""What every ablation sweep shares: the budget presets and how a sweep is declared.

A sweep config is an ordinary run config plus three fields:
  sweep_name   the table it feeds (experiments/tables.py)
  sweep        axes as data, e.g. {"width": (1.0, 0.5), "groups": (3, 8)}; the axes
               width / groups / shuffle / depth / se pick the ShuffleNet registry name,
               "model" lists registry names directly, any other axis is a config field
  seeds        one run per seed for every point of the grid

Budgets (``configs/<sweep>.py:<preset>``):
  finding  configs/ablation_shuffle.py's default (``make run``, 0.25x g3): 6 seeds per arm trained
           together in one vmapped program per arm, data on the device, 80 steps of batch
           64 (a twelfth of an epoch; eval on the first 5000 test images) with the
           single-run recipe, sized for `make run` <= 10 minutes with the set-up on 2 cores;
           the table states the gap with its CI and paired test. It measures early training
           and checks the pipeline: 24 pairs at 0.25x g3 put the sd of the per-seed
           differences at 4.55 points (results/lab/finding_24seeds), so 6 pairs detect only
           gaps >= 6.5 points; at 0.25x g8, 300 steps, the gap was +0.13 [-0.91, +1.17]
           points (p=0.76). The powered answer is the `power` table
  quick    (default) 40 steps of batch 64 per run, eval on 2000 test images: the whole
           sweep in minutes on a 2-core CPU; checks the machinery, not the paper
  proxy    half an epoch (234 steps of batch 128) of the full Fashion-MNIST training set
           per run, full test set, 2 seeds: sized so that ablation_shuffle or
           ablation_groups (24 / 30 runs) fits in about 2 hours on a 2-core CPU (1.0x g3
           trains at ~64 img/s there)
  power    one epoch (469 steps of batch 128) per run with the single-run recipe of
           configs/default.py (lr 3.2 per 1024 images, the classifier's at 0.05x), full test
           set, 6 seeds: the budget of the committed, powered tables (results/); 0.25x g3
           reaches ~85% there (seeds 0-4: 83.8-85.7%) against 93.1-93.3% for 0.5x g3 at 12
           epochs, over 90% of it
  long     the same as proxy with 10 epochs per run: for a GPU (minutes per sweep), or CPU days
  imagenet the paper's recipe (configs/imagenet.py) on imagenet2012
"""

import ml_collections

from configs import default, imagenet

PRESETS = ("finding", "quick", "proxy", "power", "long", "imagenet")


def sweep_config(name: str, axes: dict, arg: str | None) -> ml_collections.ConfigDict:
  preset = arg or "quick"
  if preset not in PRESETS:
    raise ValueError(f"configs/{name}.py:{preset}: unknown preset; valid: {', '.join(PRESETS)}")
  if preset == "imagenet":
    c = imagenet.get_config()
    c.seeds = (0,)
  elif preset == "finding":
    c = default.get_config("proxy")  # its recipe: lr 3.2 / 1024, classifier 0.05x
    c.seeds = tuple(range(6))
    c.data_on_device = True
    c.seeds_per_program = 6
    c.batch_size = 64
    c.num_train_steps = 80
    c.warmup_steps = 20
    c.eval_split = "test[:5000]"  # the same images for both arms: the pairing holds
    c.eval_every_steps = -1
    # At the end only: saving the 6 seeds' checkpoints took ~30 s on 2 cores; a kill loses
    # at most this short run's training, never a finished seed.
    c.checkpoint_every_steps = 80
    c.log_every_steps = 20
  elif preset == "power":
    c = default.get_config("proxy")  # its recipe as is: lr 3.2 / 1024, classifier 0.05x
    c.seeds = tuple(range(6))
    c.num_epochs = 1.0
    c.eval_every_steps = -1
    c.checkpoint_every_steps = 200
    c.log_every_steps = 100
  else:
    c = default.get_config("proxy")
    c.seeds = (0,) if preset == "quick" else (0, 1)
    c.num_epochs = 10.0 if preset == "long" else 0.5
    c.learning_rate = 0.8
    c.label_smoothing = 0.0  # the paper's recipe
    c.classifier_lr_scale = 1.0  # the paper's: one lr for every layer
    # Not the paper's: every stride-1 unit starts as the identity (docs/training.md): no
    # early loss spike at 1x and up, the same init for every point of a grid.
    c.zero_init_residual = True
    c.warmup_steps = 200 if preset == "long" else 50
    c.eval_every_steps = -1
    c.checkpoint_every_steps = 1000
    c.log_every_steps = 100
    if preset == "quick":
      c.num_train_steps = 40
      c.batch_size = 64
      c.learning_rate = 0.4
      c.warmup_steps = 10
      c.cache = False  # under one epoch: an unfinished tf.data cache costs seconds to drop
      c.eval_split = "test[:2000]"
      c.shuffle_buffer = 10000
      c.log_every_steps = 10
      c.checkpoint_every_steps = 20
  c.preset = preset
  c.sweep_name = name
  c.sweep = ml_collections.ConfigDict(axes)
  c.wandb.group = name
  return c
