"""A wandb mirror of the run's metrics that can never stop training.

Mode ``auto`` (the default) logs online when credentials exist (WANDB_API_KEY or a netrc
entry) and offline otherwise (the run directory lands in ``workdir/wandb`` for a later
``wandb sync``); ``disabled`` writes nothing. Any wandb failure is logged and the mirror
turns itself off.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from absl import logging

MODES = ("auto", "online", "offline", "disabled")


def _has_credentials() -> bool:
  if os.environ.get("WANDB_API_KEY"):
    return True
  netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
  try:
    return "api.wandb.ai" in netrc.read_text()
  except OSError:
    return False


class WandbMirror:

  def __init__(self, config, workdir: Path):
    self._run = None
    cfg = config.get("wandb")
    mode = cfg.mode if cfg else "disabled"
    if mode not in MODES:
      raise ValueError(f"wandb.mode={mode!r}; valid: {', '.join(MODES)}")
    from shufflenet_jax import records
    if mode == "disabled" or not records.writes_records():
      return
    if mode == "auto":
      mode = "online" if _has_credentials() else "offline"
    try:
      import wandb
      run_id = hashlib.sha1(str(Path(workdir).absolute()).encode()).hexdigest()[:16]
      self._run = wandb.init(
          project=cfg.project, group=cfg.get("group") or None, tags=list(cfg.get("tags") or []),
          name=cfg.get("name") or Path(workdir).name, config=config.to_dict(), mode=mode,
          dir=str(workdir), id=run_id, resume="allow", reinit="create_new",
          settings=wandb.Settings(silent=True, console="off"))
      logging.info("wandb: %s run %s in %s", mode, run_id, Path(workdir) / "wandb")
    except Exception as e:  # noqa: BLE001 - a mirror failure never stops training
      logging.warning("wandb disabled for this run: %s", e)
      self._run = None

  def _call(self, fn, *args, **kwargs):
    if self._run is None:
      return
    try:
      fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
      logging.warning("wandb failed (%s); continuing without it", e)
      self._run = None

  def log(self, step: int, metrics: dict) -> None:
    self._call(lambda: self._run.log(metrics, step=step))

  def summary(self, result: dict) -> None:
    self._call(lambda: self._run.summary.update(
        {k: v for k, v in result["metrics"].items()} | {"params": result["params"],
                                                        "mflops": result["mflops"]}))

  def finish(self) -> None:
    self._call(lambda: self._run.finish())
    self._run = None
