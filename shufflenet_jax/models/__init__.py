"""Model zoo: ShuffleNet v1 and the paper's baselines, all behind one registry."""

from shufflenet_jax.models.ops import (DEPTHWISE_IMPLS, POINTWISE_IMPLS, channel_shuffle,
                                       depthwise_conv, pointwise_conv)
from shufflenet_jax.models.registry import (create_model, model_names, model_spec, register,
                                            shufflenet_name)
from shufflenet_jax.models.shufflenet import ShuffleNet, stage_channels, stem_channels
# Baselines register themselves with the registry on import.
from shufflenet_jax.models import alexnet, classic, mobilenet, units  # noqa: E402,F401
