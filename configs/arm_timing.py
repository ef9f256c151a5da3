"""Paper Table 8 on this CPU: export the models to TFLite and time them with LiteRT.

  python main.py --config=configs/arm_timing.py                  # -> runs/arm_timing/
  python main.py --config=configs/arm_timing.py:quick            # 224x224 only, float32
  python main.py --config=configs/arm_timing.py \\
      --config.agreement_workdir=runs/proxy                      # + int8 agreement

Every (model, precision, resolution) is exported with shufflenet_jax.export (checked:
builtin ops only, every op delegated to XNNPACK, float32 logits equal to the model's),
then the models of each (precision, resolution) are timed side by side on one thread with
XNNPACK: warm-up runs, then ``rounds`` rounds timing each model in turn, the median over
at least ``min_runs`` runs and ``min_seconds`` per model. One record per measurement in
``<workdir>/runs/<id>/result.json`` (a killed job resumes at the first unfinished group); the table
``<workdir>/results/arm_timing.md|csv|png`` is built when all are done and is rebuilt from
the records by ``python -m experiments.tables``.

The models are untrained (timing does not depend on the weights); their BN statistics are
set from real images first, so activations and int8 ranges are those of a working network.
``agreement_workdir``: a ShuffleNet run trained on Fashion-MNIST; its int8 export's top-1
agreement with the float model on the whole test split goes into the table.
"""

import ml_collections

PRESETS = ("full", "quick")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  preset = arg or "full"
  if preset not in PRESETS:
    raise ValueError(f"configs/arm_timing.py:{preset}: unknown preset; valid: {', '.join(PRESETS)}")
  c = ml_collections.ConfigDict()
  c.task = "arm_timing"
  c.preset = preset
  # Paper Table 8 rows. AlexNet goes without its LRN layers (no multiply-adds, and XNNPACK
  # has no LRN op); its FC layers run as convolutions on the larger inputs.
  c.models = ("shufflenet_0.5x_g3", "shufflenet_1.0x_g3", "shufflenet_2.0x_g3", "alexnet",
              "mobilenet_v1_1.0")
  c.model_kwargs = ml_collections.ConfigDict({"alexnet": {"lrn": False}})
  c.reference = "shufflenet_1.0x_g3"  # ratios are relative to this model
  c.resolutions = ((224, 224), (480, 640), (720, 1280))  # (H, W), as in the paper
  c.precisions = ("float32", "int8")
  c.num_threads = 1
  c.warmup = 3
  c.rounds = 5                # the models of a group are timed in turn, this many rounds
  c.min_runs = 10
  c.max_runs = 100
  c.min_seconds = 2.0
  c.num_calibration = 8       # real images for the BN statistics and the int8 ranges
  c.int8_float_classifier = True  # int8: the last op (classifier) stays float32 (export/convert.py)
  c.int8_equalize = True  # int8: equalize ShuffleNet's activation ranges first (equalize.py)
  # int8 activation ranges: mean of per-chunk min/max over chunks of this many calibration
  # images (0: min/max over all of them; shufflenet_jax/export/quantize.py RANGE_CHUNK).
  c.int8_range_chunk = 5
  c.agreement_workdir = ""    # a trained Fashion-MNIST run (e.g. runs/proxy); "" skips
  c.keep_tflite = False       # True: keep every .tflite under <workdir>/tflite/
  if preset == "quick":
    c.resolutions = ((224, 224),)
    c.precisions = ("float32",)
    c.rounds = 3
    c.min_runs = 6
    c.min_seconds = 0.5
  return c
