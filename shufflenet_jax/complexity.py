"""Multiply-adds and trainable parameters, counted from the model itself.

MACs are read off the traced forward pass (the jaxpr of one image in eval mode): every
``conv_general_dilated`` and ``dot_general`` contributes its multiply-adds; BN, ReLU,
pooling and the shuffle are not counted (the paper's convention: one multiply-add = one
FLOP, conv + FC only). Parameters are the model's ``nnx.Param`` leaves (conv kernels, BN
scale and bias, FC weight and bias; not the BN running statistics). Because both come from
the model, the counter cannot drift from the code.

The count uses the reference ``lax`` convolution implementations: the others compute the
same function, but e.g. the block-diagonal matmul multiplies zeros and the shifted
depthwise form uses elementwise products, which are not "multiply-adds of a layer".

    python -m shufflenet_jax.complexity            # markdown table of the paper's rows
    python -m shufflenet_jax.complexity --json     # the same as a JSON list
    python -m shufflenet_jax.complexity --model shufflenet_1.0x_g3 --resolution 480 640
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import jax
import jax.extend.core as jex
import jax.numpy as jnp
from flax import nnx

from shufflenet_jax import mdtable, paper
from shufflenet_jax.models import registry

DEFAULT_RESOLUTION = (224, 224)


def _jaxpr_macs(jaxpr) -> int:
  total = 0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "conv_general_dilated":
      out = eqn.outvars[0].aval.shape
      rhs = eqn.invars[1].aval.shape
      out_features = rhs[eqn.params["dimension_numbers"].rhs_spec[0]]
      # Each output element costs (kernel size / out_features) = kh * kw * C_in / groups.
      total += math.prod(out) * math.prod(rhs) // out_features
    elif name == "dot_general":
      (lhs_contract, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      total += math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in lhs_contract)
    else:
      sub = [v for v in eqn.params.values() if isinstance(v, (jex.Jaxpr, jex.ClosedJaxpr))]
      branches = eqn.params.get("branches", ())
      if sub:
        n = eqn.params.get("length", 1) if name == "scan" else 1
        total += n * sum(_jaxpr_macs(getattr(s, "jaxpr", s)) for s in sub)
      elif branches:  # cond: the most expensive branch
        total += max(_jaxpr_macs(b.jaxpr) for b in branches)
  return total


def count(model: nnx.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
  """(multiply-adds, trainable parameters) of ``model`` on one input of ``input_shape``
  (NHWC with batch 1). ``model`` may be abstract (from ``nnx.eval_shape``)."""
  model.eval()
  graphdef, state = nnx.split(model)
  params = sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
  x = jax.ShapeDtypeStruct(input_shape, jnp.float32)
  jaxpr = jax.make_jaxpr(lambda s, x: nnx.merge(graphdef, s)(x))(state, x)
  return _jaxpr_macs(jaxpr.jaxpr), int(params)


def _reference_overrides(name: str) -> dict:
  accepted = registry.model_arguments(name) or ()
  return {k: "lax" for k in ("pointwise_impl", "depthwise_impl") if k in accepted}


def model_complexity(name: str, resolution: tuple[int, int] = DEFAULT_RESOLUTION,
                     **overrides) -> dict:
  """A record {name, groups, width, ..., resolution, mflops, params} for registry ``name``."""
  _, preset = registry.model_spec(name)
  kw = {**preset, **overrides, **_reference_overrides(name)}
  model = nnx.eval_shape(lambda: registry.create_model(name, rngs=registry.KeyStream(0), **kw))
  h, w = resolution
  macs, params = count(model, (1, h, w, kw.get("in_channels", 3)))
  record = dict(name=name)
  for key in ("groups", "width", "shuffle", "depth", "se"):
    record[key] = getattr(model, key, None)
  record.update(resolution=[h, w], mflops=round(macs / 1e6, 2), params=params)
  return record


def paper_records() -> list[dict]:
  """Our complexity beside the paper's figure for every ShuffleNet row the paper reports,
  and for the paper's baselines that the registry has."""
  cache = {}
  records = []
  for row in paper.shufflenet_complexity_rows() + paper.baseline_complexity_rows():
    if row["name"] not in cache:
      cache[row["name"]] = model_complexity(row["name"])
    rec = {**cache[row["name"]], **{k: v for k, v in row.items() if k != "name"}}
    rec["rel_diff"] = round(rec["mflops"] / rec["paper_mflops"] - 1, 4)
    records.append(rec)
  return records


def markdown(records: list[dict]) -> str:
  header = ["paper table", "model", "g", "width", "shuffle", "depth", "SE", "resolution",
            "MFLOPs (ours)", "MFLOPs (paper)", "diff", "params (ours)"]
  rows = []
  for r in records:
    paper_mflops = r.get("paper_mflops")
    rows.append([r.get("paper_table", ""), r["name"]]
                + ["" if r[k] is None else r[k] for k in ("groups", "width", "shuffle", "depth", "se")]
                + [f"{r['resolution'][0]}x{r['resolution'][1]}", f"{r['mflops']:.1f}",
                   "" if paper_mflops is None else paper_mflops,
                   f"{100 * r['rel_diff']:+.1f}%" if "rel_diff" in r else "", f"{r['params']:,}"])
  return "\n".join(mdtable.markdown(header, rows))


# The models of the official release (ShuffleNet-Series ShuffleNetV1).
RELEASED_GROUPS, RELEASED_WIDTHS = (3, 8), (0.5, 1.0, 1.5, 2.0)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m shufflenet_jax.complexity",
      description="MFLOPs (multiply-adds) and parameters counted from the traced models, "
                  "beside the paper's figures.")
  parser.add_argument("--json", action="store_true", help="print a JSON list")
  parser.add_argument("--model", help="one registry name (default: every paper row)")
  parser.add_argument("--resolution", nargs=2, type=int, metavar=("H", "W"),
                      help="input height and width (default 224 224)")
  parser.add_argument("--release", action="store_true",
                      help="the official release's 8 models as it builds them "
                           "(shuffle_order=release, no classifier bias): their parameters")
  args = parser.parse_args(argv)
  if args.release:
    rows = []
    for g in RELEASED_GROUPS:
      for width in RELEASED_WIDTHS:
        name = registry.shufflenet_name(g, width)
        r = model_complexity(name, shuffle_order="release", classifier_bias=False)
        rows.append([name, f"{r['mflops']:.1f}", f"{r['params']:,}"])
    print("\n".join(mdtable.markdown(["model (release options)", "MFLOPs", "params"], rows)))
    return 0
  if args.resolution and not args.model:
    parser.error("--resolution needs --model")
  try:
    if args.model:
      records = [model_complexity(args.model, tuple(args.resolution or DEFAULT_RESOLUTION))]
    else:
      records = paper_records()
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(json.dumps(records, indent=1) if args.json else markdown(records))
  return 0


if __name__ == "__main__":
  sys.exit(main())
