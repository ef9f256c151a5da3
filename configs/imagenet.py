"""The paper's ImageNet recipe (Sec. 4; docs/design.md section 4) on tfds `imagenet2012`.

  python main.py --config=configs/imagenet.py --workdir=runs/imagenet_1.0x_g3 \\
      --config.data_dir=/path/to/tensorflow_datasets
  python main.py --config=configs/imagenet.py:model=shufflenet_0.5x_g3,batch=256 ...
  python main.py --config=configs/imagenet.py:eval --config.init_from=runs/release_1.0x_g8 \\
      --workdir=runs/eval_release_1.0x_g8 --config.data_dir=/path/to/tensorflow_datasets

``eval``: no training; the checkpoint of ``init_from`` (a run, or weights converted by
``python -m shufflenet_jax.convert``) evaluated on the validation split with resize 256 /
center crop 224 (the model, its arguments and its input scaling are the run's own).

SGD momentum 0.9, LR 0.5 at batch 1024 scaled linearly with the batch, linear decay to 0
over 3e5 steps at batch 1024 (~240 epochs), weight decay 4e-5 on kernels, random-resized
crop (area (0.08, 1), or (0.49, 1) below 1x width) + flip, eval resize 256 / center crop
224. Label smoothing 0.1 as in the official release (set 0 for the paper's recipe).
ImageNet needs a manual download; the error message says how to prepare it.
"""

import ml_collections

from configs import default


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  tokens = arg.split(",") if arg else []
  opts = dict(kv.split("=", 1) for kv in tokens if "=" in kv)
  flags = {t for t in tokens if "=" not in t}
  unknown = (set(opts) - {"model", "batch"}) | (flags - {"eval"})
  if unknown:
    raise ValueError(f"configs/imagenet.py: unknown option(s) {sorted(unknown)}; "
                     "valid: eval, model=NAME, batch=N")
  c = default.get_config("proxy")
  c.preset = "imagenet"
  c.model = opts.get("model", "shufflenet_1.0x_g3")
  c.model_kwargs = ml_collections.ConfigDict({"stem": "imagenet"})
  c.zero_init_residual = False  # the paper's initialization
  c.dataset = "imagenet2012"
  c.image_size = 224
  c.augment = "random_resized_crop"
  narrow = any(f"_{w}x_" in c.model for w in ("0.25", "0.5"))
  c.crop_area = (0.49, 1.0) if narrow else (0.08, 1.0)
  c.eval_resize = 256
  c.eval_resize_method = "bicubic"  # shufflenet_jax/datasets.py: EVAL_RESIZE_METHODS
  c.cache = False
  c.shuffle_buffer = 16384
  c.batch_size = int(opts.get("batch", 1024))
  c.eval_batch_size = 1000
  c.learning_rate = 0.5        # at batch 1024, scaled linearly with batch_size
  c.lr_reference_batch = 1024
  c.num_train_steps = int(300_000 * 1024 / c.batch_size)
  c.warmup_steps = 0
  c.weight_decay = 4e-5
  c.classifier_lr_scale = 1.0  # the classifier's lr / the body's (1 = the paper's)
  c.label_smoothing = 0.1
  c.log_every_steps = 100
  c.eval_every_steps = 10_000
  c.checkpoint_every_steps = 2000
  if "eval" in flags:
    c.preset = "imagenet_eval"
    c.eval_only = True
    c.init_from = ""  # required: a run directory (config.json, checkpoints/)
    c.input_norm = "mean_std"  # replaced by init_from's own
    c.eval_batch_size = int(opts.get("batch", 250))
  return c
