"""Every implementation of the two convolutions equals the lax reference (values and
gradients), and the channel shuffle is the exact (g, n) -> (n, g) permutation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shufflenet_jax.models import group_major, layers, ops


def test_channel_shuffle_is_the_g_n_transpose():
  # 6 channels, g=2: groups (0 1 2) (3 4 5) -> (n, g) order 0 3 1 4 2 5.
  x = jnp.arange(6.0).reshape(1, 1, 1, 6)
  np.testing.assert_array_equal(ops.channel_shuffle(x, 2)[0, 0, 0], [0, 3, 1, 4, 2, 5])
  # g=3, 12 channels: output k*g + j is input j*n + k.
  g, n = 3, 4
  x = jnp.arange(g * n, dtype=jnp.float32).reshape(1, 1, 1, g * n)
  out = np.asarray(ops.channel_shuffle(x, g))[0, 0, 0]
  expected = [j * n + k for k in range(n) for j in range(g)]
  np.testing.assert_array_equal(out, expected)


def test_channel_shuffle_rejects_indivisible_channels():
  with pytest.raises(ValueError, match="groups=4"):
    ops.channel_shuffle(jnp.zeros((1, 1, 1, 6)), 4)


def _max_rel_err(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12)


def _value_and_grads(fn, x, k):
  # A fixed random cotangent so every output element's gradient path is exercised.
  def loss(x, k):
    y = fn(x, k)
    return jnp.sum(y * jnp.sin(jnp.arange(y.size, dtype=y.dtype).reshape(y.shape)))
  # Jitted: run eagerly, every primitive compiled a program of its own (20-29 s for the
  # first cases on 2 cores).
  return jax.jit(lambda x, k: (fn(x, k), *jax.grad(loss, argnums=(0, 1))(x, k)))(x, k)


@pytest.mark.parametrize("impl", ops.POINTWISE_IMPLS)
@pytest.mark.parametrize("groups,cin,cout", [(1, 24, 60), (3, 240, 60), (8, 64, 384),
                                             (2, 50, 176)])
def test_pointwise_impls_match_lax_reference(impl, groups, cin, cout):
  kx, kk = jax.random.split(jax.random.key(groups))
  x = jax.random.normal(kx, (2, 5, 7, cin))
  k = jax.random.normal(kk, (1, 1, cin // groups, cout))
  ref = _value_and_grads(lambda x, k: ops.pointwise_conv(x, k, groups, "lax"), x, k)
  got = _value_and_grads(lambda x, k: ops.pointwise_conv(x, k, groups, impl), x, k)
  for r, g in zip(ref, got):
    assert g.shape == r.shape
    assert _max_rel_err(g, r) < 1e-5


@pytest.mark.parametrize("impl", ops.DEPTHWISE_IMPLS)
@pytest.mark.parametrize("stride,size", [(1, 7), (2, 8), (2, 7), (1, 4)])
def test_depthwise_impls_match_lax_reference(impl, stride, size):
  kx, kk = jax.random.split(jax.random.key(size))
  # 6 images: shiftvjp's weight gradient sums 3 slices of the batch (gcd(6, 4) = 2 each).
  x = jax.random.normal(kx, (6, size, size + 1, 12))
  k = jax.random.normal(kk, (3, 3, 1, 12))
  ref = _value_and_grads(lambda x, k: ops.depthwise_conv(x, k, stride, "lax"), x, k)
  got = _value_and_grads(lambda x, k: ops.depthwise_conv(x, k, stride, impl), x, k)
  for r, g in zip(ref, got):
    assert g.shape == r.shape
    assert _max_rel_err(g, r) < 1e-5


@pytest.mark.parametrize("impl", ops.POINTWISE_IMPLS)
@pytest.mark.parametrize("stride,size,groups", [(1, 7, 16), (2, 8, 16), (2, 7, 4), (1, 5, 1)])
def test_grouped_conv_impls_match_lax_reference(impl, stride, size, groups):
  """ResNeXt's grouped 3x3: im2col's batched GEMM (matmul) and the sum over taps of grouped
  1x1 convs (the others) equal XLA's grouped convolution."""
  kx, kk = jax.random.split(jax.random.key(size + groups))
  x = jax.random.normal(kx, (2, size, size + 1, 32))
  k = jax.random.normal(kk, (3, 3, 32 // groups, 32))
  ref = _value_and_grads(lambda x, k: ops.grouped_conv(x, k, stride, groups, "lax"), x, k)
  got = _value_and_grads(lambda x, k: ops.grouped_conv(x, k, stride, groups, impl), x, k)
  for r, g in zip(ref, got):
    assert g.shape == r.shape
    assert _max_rel_err(g, r) < 1e-5


def test_unknown_impl_names_the_choices():
  with pytest.raises(ValueError, match="pointwise_impl='fft'.*lax, einsum, matmul, blockdiag"):
    ops.pointwise_conv(jnp.zeros((1, 1, 1, 4)), jnp.zeros((1, 1, 4, 4)), 1, "fft")
  with pytest.raises(ValueError, match="depthwise_impl='x'.*lax, shift"):
    ops.depthwise_conv(jnp.zeros((1, 3, 3, 4)), jnp.zeros((3, 3, 1, 4)), 1, "x")


def test_pool_3x3_s2_matches_padded_reference():
  x = jax.random.uniform(jax.random.key(0), (1, 6, 5, 2))
  xp = np.pad(np.asarray(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
  avg = np.asarray(ops.pool_3x3_s2(x, "avg"))
  mx = np.asarray(ops.pool_3x3_s2(x, "max"))
  assert avg.shape == mx.shape == (1, 3, 3, 2)
  for i in range(3):
    for j in range(3):
      win = xp[0, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
      np.testing.assert_allclose(avg[0, i, j], win.sum((0, 1)) / 9, rtol=1e-6)
      np.testing.assert_allclose(mx[0, i, j], win.max((0, 1)), rtol=1e-6)


_NHWC_SHAPES = [(2, 7, 8, 5), (2, 28, 28, 3), (3, 1, 1, 2), (1, 2, 3, 4)]


@pytest.mark.parametrize("impl,shape", [("depthwise", s) for s in _NHWC_SHAPES]
                         + [("shift", s) for s in _NHWC_SHAPES + [(2, 4, 3, 6, 6, 2)]])
def test_avg_pool_implementations_equal_the_window_pool(impl, shape):
  # The int8 export computes the stride-2 units' average pool as a depthwise conv; training
  # on CPU as shifted windows with a separable gradient (odd and even sizes, 1x1, and for
  # shift group-major's extra leading axis).
  x = jax.random.normal(jax.random.key(1), shape)
  ref = _value_and_grads(lambda x, k: _pool_leading(x, "window") * k, x, 1.0)
  got = _value_and_grads(lambda x, k: ops.pool_3x3_s2(x, "avg", impl) * k, x, 1.0)
  for r, g in zip(ref[:2], got[:2]):
    assert g.shape == r.shape and _max_rel_err(g, r) < 1e-6


def _pool_leading(x, impl):
  """pool_3x3_s2 over any leading axes, via the NHWC form."""
  y = ops.pool_3x3_s2(x.reshape(-1, *x.shape[-3:]), "avg", impl)
  return y.reshape(*x.shape[:-3], *y.shape[1:])


def test_bad_pool_impl_is_rejected():
  with pytest.raises(ValueError, match="pool_impl='conv'.*window, depthwise, shift"):
    ops.pool_3x3_s2(jnp.zeros((1, 4, 4, 1)), "avg", "conv")


def test_materialize_is_the_identity_and_survives_xla():
  """``materialize`` returns its input, passes the gradient through unchanged, and its
  while loop is still in the optimized program (else it would store nothing)."""
  x = jax.random.normal(jax.random.key(3), (2, 3, 3, 4))
  np.testing.assert_array_equal(ops.materialize(x), x)
  ct = jax.random.normal(jax.random.key(4), x.shape)
  g = jax.grad(lambda x: jnp.sum(ops.materialize(jnp.maximum(x, 0) + 1) * ct))(x)
  np.testing.assert_array_equal(g, jnp.where(x > 0, ct, 0))
  hlo = jax.jit(lambda x: ops.materialize(x * 2) + 1).lower(x).compile().as_text()
  assert " while(" in hlo, hlo[-2000:]


@pytest.mark.parametrize("g,m", [(2, 4), (3, 9), (3, 10), (8, 3), (1, 5)])
def test_group_major_layout_and_shuffle(g, m):
  """(g, N, H, W, m) holds NHWC channel j*m + k at [j, ..., k]; its shuffle (one transpose
  when g divides m, else a permutation copy) is the NHWC shuffle in that layout."""
  x = jax.random.normal(jax.random.key(0), (2, 3, 3, g * m))
  xg = group_major.to_group_major(x, g)
  np.testing.assert_array_equal(xg[g - 1, 1, 2, 0], x[1, 2, 0, (g - 1) * m:])
  np.testing.assert_array_equal(group_major.from_group_major(xg), x)
  np.testing.assert_array_equal(
      group_major.from_group_major(group_major.channel_shuffle(xg)),
      ops.channel_shuffle(x, g))


# Flax's own BatchNorm (the reference) writes its float32 batch statistics into the
# bfloat16 running-statistics variables; jax warns about that cast (not our layer's).
@pytest.mark.filterwarnings("ignore:scatter inputs have incompatible types:FutureWarning")
@pytest.mark.parametrize("layout", ["nhwc", "group_major"])
@pytest.mark.parametrize("residual,relu", [(False, False), (False, True), (True, True)])
@pytest.mark.parametrize("dtype,tol", [(jnp.float64, 1e-12), (jnp.float32, 1e-5),
                                       (jnp.bfloat16, 1e-6)])
def test_batch_norm_act_equals_flax(layout, residual, relu, dtype, tol):
  """layers.batch_norm_act (train mode: the custom-VJP BN [+ residual] [-> ReLU]) on NHWC
  and, as group_major.batch_norm, on group-major tensors equals flax's BatchNorm on the NHWC
  tensor followed by the same add and ReLU: output, gradients of x, the residual, scale and
  bias under a random cotangent, and the running statistics it writes; eval mode too.
  bfloat16 (flax's computation, written without flax's private helpers) equals it exactly."""
  from flax import nnx
  g, m = 3, 4
  with jax.enable_x64(dtype == jnp.float64):
    keys = jax.random.split(jax.random.key(0), 5)
    x = jax.random.normal(keys[0], (6, 5, 5, g * m), dtype) * 2 + 0.5
    r = jax.random.normal(keys[1], x.shape, dtype)
    ct = jax.random.normal(keys[2], x.shape, dtype)
    scale = 1 + 0.3 * jax.random.normal(keys[3], (g * m,), dtype)
    bias = 0.2 * jax.random.normal(keys[4], (g * m,), dtype)

    def make():
      bn = layers.batch_norm(g * m, None, nnx.Rngs(0))
      nnx.update(bn, jax.tree.map(lambda a: a.astype(dtype), nnx.state(bn)))
      bn.scale[...], bn.bias[...] = scale, bias
      return bn

    def reference(bn, x, r, scale, bias):
      bn.scale[...], bn.bias[...] = scale, bias
      y = bn(x) + (r if residual else 0)
      return jax.nn.relu(y) if relu else y

    def fused(bn, x, r, scale, bias):
      bn.scale[...], bn.bias[...] = scale, bias
      if layout == "nhwc":
        return layers.batch_norm_act(bn, x, r if residual else None, relu)
      y = group_major.batch_norm(bn, group_major.to_group_major(x, g),
                                 group_major.to_group_major(r, g) if residual else None, relu)
      return group_major.from_group_major(y)

    for train in (True, False):
      outs = []
      for fn in (reference, fused):
        bn = make()
        bn.train() if train else bn.eval()
        if not train:
          bn.mean[...], bn.var[...] = x.mean((0, 1, 2)) + 0.1, x.var((0, 1, 2)) * 1.5
        graphdef, state = nnx.split(bn)

        def pure(*args, fn=fn, graphdef=graphdef, state=state):
          module = nnx.merge(graphdef, state, copy=True)
          return fn(module, *args), nnx.state(module, nnx.BatchStat)

        y, pullback, stats = jax.vjp(pure, x, r, scale, bias, has_aux=True)
        outs.append((y, pullback(ct), stats["mean"][...], stats["var"][...]))
      (y_ref, g_ref, m_ref, v_ref), (y_alt, g_alt, m_alt, v_alt) = outs
      assert y_alt.dtype == dtype
      assert _max_rel_err(y_alt, y_ref) < tol
      for a, b in zip(g_alt, g_ref):
        assert _max_rel_err(a, b) < tol
      np.testing.assert_allclose(m_alt, m_ref, rtol=tol, atol=tol)
      np.testing.assert_allclose(v_alt, v_ref, rtol=tol, atol=tol)
      if train:
        assert not np.allclose(m_alt, 0)  # the running mean moved
