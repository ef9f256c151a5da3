"""A tiny Fashion-MNIST training config shared by the training and sweep tests."""

from configs import default

# Command-line form of the same overrides, for tests that run main.py.
TINY = dict(model="shufflenet_tiny", batch_size=32, eval_batch_size=250,
            train_split="train[:1024]", eval_split="test[:500]", num_train_steps=12,
            checkpoint_every_steps=4, log_every_steps=4, eval_every_steps=-1, warmup_steps=0,
            shuffle_buffer=1024, learning_rate=0.8, classifier_lr_scale=1.0)


def tiny_config(**overrides):
  c = default.get_config("quick")
  c.wandb.mode = "disabled"
  for k, v in {**TINY, **overrides}.items():
    c[k] = v
  return c


def tiny_flags(**overrides) -> list[str]:
  return [f"--config.{k}={v}" for k, v in {**TINY, **overrides}.items()]
