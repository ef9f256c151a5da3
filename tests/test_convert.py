"""The official release's weights in this model: ``shuffle_order='release'`` and
``classifier_bias=False`` reproduce its parameter counts, and a release state dict
converted by ``python -m shufflenet_jax.convert`` gives the logits of an independent
float64 NumPy forward pass of the release's architecture (tests/release_reference.py).
No download and no torch: the tests write the state dicts themselves."""

import json
import struct

import numpy as np
import pytest

from tests import release_reference as ref

RELEASED = [(g, s) for g in (3, 8) for s in ("0.5x", "1.0x", "1.5x", "2.0x")]


def _name(groups: int, size: str) -> str:
  return f"shufflenet_{size[:-1]}x_g{groups}"


def _images(n=2, size=64, seed=1):
  return np.random.default_rng(seed).normal(size=(n, size, size, 3)).astype(np.float32)


@pytest.mark.parametrize("groups,size", RELEASED)
def test_release_options_reproduce_the_release_parameter_counts(groups, size):
  """Exactly the release's trainable parameters (counted from its layout) for all 8
  released models; the paper's classifier bias adds 1000; MFLOPs do not depend on the
  shuffle order or the bias."""
  from shufflenet_jax import complexity
  name = _name(groups, size)
  release = complexity.model_complexity(name, shuffle_order="release", classifier_bias=False)
  paper = complexity.model_complexity(name)
  assert release["params"] == ref.parameter_count(groups, size)
  assert paper["params"] == release["params"] + 1000
  assert release["mflops"] == paper["mflops"]


def _converted(groups, size, tmp_path, fmt="npz", layout="release"):
  """(the state dict, the directory python -m shufflenet_jax.convert wrote)."""
  from shufflenet_jax import convert
  sd = (ref.random_state_dict(groups, size) if layout == "release"
        else ref.imgclsmob_random_state_dict(groups, float(size[:-1])))
  path = tmp_path / f"{layout}.{fmt}"
  if fmt == "npz":
    np.savez(path, **{f"module.{k}": v for k, v in sd.items()})  # DataParallel's prefixes
  else:
    _write_safetensors(path, sd)
  out = tmp_path / "run"
  assert convert.main([f"--format={layout}", f"--in={path}", f"--model={_name(groups, size)}",
                       f"--out={out}"]) == 0
  return sd, out


def _write_safetensors(path, sd):
  codes = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
  header, blobs, offset = {}, [], 0
  for k, v in sd.items():
    b = np.ascontiguousarray(v).tobytes()
    header[k] = {"dtype": codes[v.dtype], "shape": list(v.shape),
                 "data_offsets": [offset, offset + len(b)]}
    blobs.append(b)
    offset += len(b)
  h = json.dumps(header).encode()
  path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


@pytest.mark.parametrize("groups,size,fmt", [(8, "0.5x", "npz"), (3, "1.0x", "safetensors"),
                                             (8, "1.0x", "npz")])
def test_converted_release_weights_give_the_release_logits(groups, size, fmt, tmp_path):
  """Max logit difference <= 1e-4 (float32 model vs the float64 reference) on random
  images; the g8 cases are the ones the paper's permutation gets wrong (checked: with it
  the same weights give logits off by more than 0.1)."""
  from shufflenet_jax import train
  sd, out = _converted(groups, size, tmp_path, fmt)
  model, step = train.restore_model(out)
  assert step == 0
  x = _images()
  expected = ref.forward(sd, x, groups, size)
  assert np.abs(expected).max() > 0.5  # logits of a realistic size
  ours = np.asarray(model(x))
  assert np.abs(ours - expected).max() <= 1e-4
  if groups == 8:
    for unit in model.units:
      unit.shuffle_order = "paper"
    assert np.abs(np.asarray(model(x)) - expected).max() > 0.1
  config = json.loads((out / "config.json").read_text())
  assert config["model_kwargs"] == {"stem": "imagenet", "shuffle_order": "release",
                                    "classifier_bias": False}


# imgclsmob's own parameter counts (pytorchcv shufflenet.py _test) of its models in our grid
IMGCLSMOB_PARAMS = {(1, "1.0x"): 1531936, (2, "1.0x"): 1733848, (3, "1.0x"): 1865728,
                    (4, "1.0x"): 1968344, (8, "1.0x"): 2434768, (1, "0.5x"): 534484,
                    (3, "0.5x"): 718324, (1, "0.25x"): 209746, (3, "0.25x"): 305902}


@pytest.mark.parametrize("groups,size", sorted(IMGCLSMOB_PARAMS))
def test_imgclsmob_models_have_its_parameter_counts(groups, size):
  from shufflenet_jax import complexity
  counted = complexity.model_complexity(_name(groups, size), concat_order="branch_first")
  layout = ref.imgclsmob_shapes(groups, float(size[:-1]))
  assert counted["params"] == IMGCLSMOB_PARAMS[(groups, size)] == sum(
      int(np.prod(s)) for k, s in layout.items() if "running" not in k)


def test_converted_imgclsmob_weights_give_its_logits(tmp_path):
  """imgclsmob's layout (1.0x g3): its stride-2 units put the branch first; converted with
  concat_order=branch_first, max logit difference <= 1e-4 against a float64 NumPy forward
  pass of its architecture."""
  from shufflenet_jax import train
  sd, out = _converted(3, "1.0x", tmp_path, layout="imgclsmob")
  model, _ = train.restore_model(out)
  x = _images()
  expected = ref.imgclsmob_forward(sd, x, 3, 1.0)
  assert np.abs(expected).max() > 0.5
  assert np.abs(np.asarray(model(x)) - expected).max() <= 1e-4
  assert json.loads((out / "config.json").read_text())["model_kwargs"] == {
      "stem": "imagenet", "concat_order": "branch_first"}


def _error(capsys, *args) -> str:
  from shufflenet_jax import convert
  assert convert.main(list(args)) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("error: "), err
  return err[0]


def test_a_bad_state_dict_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
  sd = ref.random_state_dict(3, "0.5x")
  out = tmp_path / "out"
  common = ["--format=release", "--model=shufflenet_0.5x_g3", f"--out={out}"]
  missing = dict(sd)
  del missing["features.5.branch_main_1.3.weight"]
  np.savez(tmp_path / "missing.npz", **missing)
  assert "features.5.branch_main_1.3.weight: missing" in _error(
      capsys, *common, f"--in={tmp_path / 'missing.npz'}")
  wrong = dict(sd, **{"classifier.0.weight": np.zeros((10, 480), np.float32)})
  np.savez(tmp_path / "wrong.npz", **wrong)
  line = _error(capsys, *common, f"--in={tmp_path / 'wrong.npz'}")
  assert "classifier.0.weight: shape (10, 480)" in line and "(480, 1000)" in line
  extra = dict(sd, **{"features.99.branch_main_1.0.weight": np.zeros((1,), np.float32)})
  np.savez(tmp_path / "extra.npz", **extra)
  assert "features.99.branch_main_1.0.weight: a tensor this model does not have" in _error(
      capsys, *common, f"--in={tmp_path / 'extra.npz'}")
  assert "--format='caffe'; valid: release, imgclsmob" in _error(
      capsys, "--format=caffe", "--model=shufflenet_0.5x_g3", f"--out={out}",
      f"--in={tmp_path / 'wrong.npz'}")
  assert "no such file" in _error(capsys, *common, f"--in={tmp_path / 'nope.npz'}")
  (tmp_path / "weights.h5").write_bytes(b"x")
  assert "unknown file type" in _error(capsys, *common, f"--in={tmp_path / 'weights.h5'}")
  assert "unknown model name 'shufflenet_0.6x_g3'" in _error(
      capsys, "--format=release", "--model=shufflenet_0.6x_g3", f"--out={out}",
      f"--in={tmp_path / 'wrong.npz'}")
  assert "--model='mobilenet_v1_1.0': the converters load ShuffleNets" in _error(
      capsys, "--format=release", "--model=mobilenet_v1_1.0", f"--out={out}",
      f"--in={tmp_path / 'wrong.npz'}")
  imgclsmob = ref.imgclsmob_random_state_dict(3, 0.5)
  np.savez(tmp_path / "imgclsmob.npz", **imgclsmob)  # the other format's names
  assert "a tensor this model does not have" in _error(
      capsys, *common, f"--in={tmp_path / 'imgclsmob.npz'}")
  assert not out.exists()


def test_converted_weights_export_to_checked_tflite(tmp_path):
  """python -m shufflenet_jax.export --workdir on a converted checkpoint: float32 passes
  the numerical check against the float64 JAX model, float32 and int8 are builtin-only and
  taken whole by XNNPACK (calibrated on Fashion-MNIST: no ImageNet here)."""
  from shufflenet_jax import export
  _, out = _converted(8, "0.5x", tmp_path)
  reports = {}
  for precision in export.PRECISIONS:
    tflite, reports[precision] = export.export_run(out, precision, num_calibration=16,
                                                   calibration_dataset="fashion_mnist")
    assert reports[precision].ok, reports[precision].problems
    assert reports[precision].delegate_partitions == 1
    assert reports[precision].input_shape == (1, 224, 224, 3)
  assert reports["float32"].max_abs_diff <= export.FLOAT32_TOLERANCE


def test_the_complexity_tool_prints_the_release_counts(capsys):
  from shufflenet_jax import complexity
  assert complexity.main(["--release"]) == 0
  out = capsys.readouterr().out
  for g, size in RELEASED:
    assert f"| {_name(g, size)} | " in out
    assert f" | {ref.parameter_count(g, size):,} |" in out


def test_imagenet_evaluation_of_converted_weights(tmp_path):
  """configs/imagenet.py:eval on a small fake ImageNet (tfds mock data): the converted
  release model, its BGR 0-255 input scaling and bilinear resize taken from the converted
  run, resize / center crop; the eval loss equals the cross-entropy of the NumPy release forward pass on the
  same preprocessed images, and the record names what it evaluated."""
  import ml_collections
  import tensorflow_datasets as tfds

  from configs import imagenet
  from shufflenet_jax import input_pipeline, train, validate
  sd, run = _converted(3, "0.5x", tmp_path)
  c = imagenet.get_config("eval,batch=8")
  with pytest.raises(ValueError, match="init_from=''; valid: a run directory"):
    validate.check_config(c)
  c.update(dict(init_from=str(run), image_size=64, eval_resize=72, download=True))
  c.wandb.mode = "disabled"
  with tfds.testing.mock_data(num_examples=20):
    result = train.evaluate_checkpoint(c, tmp_path / "eval")
    same = ml_collections.ConfigDict(c.to_dict())
    same.input_norm = "bgr_0_255"
    same.eval_resize_method = "bilinear"  # the release's (OpenCV INTER_LINEAR), not bicubic
    batches = list(input_pipeline.eval_dataset(same)[0].as_numpy_iterator())
  keep = np.concatenate([b["mask"] for b in batches]) > 0
  images = np.concatenate([b["image"] for b in batches])[keep]
  labels = np.concatenate([b["label"] for b in batches])[keep]
  assert images.shape == (20, 64, 64, 3) and images.max() > 100  # 0-255, not normalized
  logits = ref.forward(sd, images, 3, "0.5x")
  top = logits.max(-1, keepdims=True)
  ce = np.log(np.exp(logits - top).sum(-1)) + top[:, 0] - logits[np.arange(20), labels]
  m = result["metrics"]
  assert m["eval_examples"] == 20 and m["steps"] == 0
  assert m["eval_loss"] == pytest.approx(ce.mean(), rel=1e-4)
  assert m["eval_top1_err"] == pytest.approx(1 - np.mean(logits.argmax(-1) == labels))
  assert result["evaluated"] == {"init_from": str(run), "checkpoint_step": 0}
  stored = json.loads((tmp_path / "eval" / "config.json").read_text())
  assert stored["input_norm"] == "bgr_0_255" and stored["model"] == "shufflenet_0.5x_g3"
  assert stored["eval_resize_method"] == "bilinear"


def test_a_pytorch_checkpoint_is_read_directly_where_torch_is_installed(tmp_path):
  """The release's own file format: a .pth.tar written by torch.save, wrapped in
  ``state_dict`` with DataParallel's ``module.`` prefixes (skipped without torch)."""
  torch = pytest.importorskip("torch")
  from shufflenet_jax import convert, train
  sd = ref.random_state_dict(8, "1.0x")
  path = tmp_path / "snetv1_group8_1.0x.pth.tar"
  torch.save({"state_dict": {f"module.{k}": torch.from_numpy(np.asarray(v))
                             for k, v in sd.items()}}, path)
  out = tmp_path / "run"
  assert convert.main(["--format=release", f"--in={path}", "--model=shufflenet_1.0x_g8",
                       f"--out={out}"]) == 0
  model, _ = train.restore_model(out)
  x = _images()
  assert np.abs(np.asarray(model(x)) - ref.forward(sd, x, 8, "1.0x")).max() <= 1e-4
