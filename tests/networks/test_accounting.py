"""Accounting: per-part parameters, live parameters and FLOPs against closed forms."""

import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec

from tests.networks import _formulas as F
from tfgap import networks
from tfgap.networks import accounting

ACT = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 17)


def _obs(shape):
  return tensor_spec.BoundedTensorSpec(shape, tf.uint8, 0, 255)


def test_nature_flops_and_params_at_84x84():
  net = networks.build_q_network(_obs((84, 84, 4)), ACT, bottleneck="flatten")
  result = accounting.account(net)
  # SAME: 84 -> 21 -> 11 -> 11.
  phi_flops = 2 * (21 * 21 * 8 * 8 * 4 * 32 + 11 * 11 * 4 * 4 * 32 * 64 + 11 * 11 * 3 * 3 * 64 * 64)
  psi_flops = 2 * (7744 * 512 + 512 * 18)
  assert result["parts"]["phi"] == {"params": 77_984, "live": 77_984, "flops": phi_flops}
  assert result["parts"]["bottleneck"] == {"params": 0, "live": 0, "flops": 0}
  assert result["parts"]["psi"]["params"] == F.dense(7744, 512) + F.dense(512, 18)
  assert result["parts"]["psi"]["flops"] == psi_flops
  assert result["total"]["flops"] == phi_flops + psi_flops
  assert accounting.psi_input_weights(net) == 7744 * 512
  assert sum(r["params"] for r in result["layers"]) == result["total"]["params"]


def test_softmoe_flops_closed_form():
  kw = dict(num_experts=4, expert_hidden=64)
  net = networks.build_q_network(_obs((44, 44, 4)), ACT, encoder="impala", bottleneck="softmoe",
                                 bottleneck_kwargs=kw)
  result = accounting.account(net)
  m, d, n, h = 6 * 6, 32, 4, 64
  p = 9
  flops = 2 * m * d * n * p * 3 + 2 * n * p * d * h * 2
  assert result["parts"]["bottleneck"]["flops"] == flops
  assert result["parts"]["bottleneck"]["params"] == F.bottleneck("softmoe", (6, 6, 32), **kw)[0]
  # Shared per-token weights are all live.
  assert result["parts"]["bottleneck"]["live"] == result["parts"]["bottleneck"]["params"]
  # Dopamine default: no 512 layer after the MoE, the output layer reads the m*d mixed tokens.
  assert result["parts"]["psi"]["params"] == F.dense(m * d, 18)


@pytest.mark.parametrize("scale", [1, 4])
def test_gap_costs_less_than_flatten_and_softmoe(scale):
  obs = _obs((84, 84, 4))
  totals = {}
  for b in ("flatten", "gap", "softmoe"):
    net = networks.build_q_network(obs, ACT, encoder="nature", width_scale=scale, bottleneck=b)
    totals[b] = accounting.account(net)["total"]
  assert totals["gap"]["params"] < totals["softmoe"]["params"] < totals["flatten"]["params"]
  assert totals["gap"]["flops"] < totals["softmoe"]["flops"]
  assert totals["gap"]["flops"] < totals["flatten"]["flops"]


def test_noisy_layers_count_two_matmuls():
  net = networks.build_q_network(_obs((36, 36, 4)), ACT, bottleneck="gap", head_units=(32,),
                                 noisy=True)
  psi = accounting.account(net)["parts"]["psi"]
  assert psi["flops"] == 4 * (64 * 32 + 32 * 18)
  assert psi["params"] == 2 * (F.dense(64, 32) + F.dense(32, 18))


def test_keras_model_accounting_matches_network():
  kw = dict(encoder="impala", width_scale=0.5, bottleneck="tokenize", head_units=(64,))
  net = networks.build_q_network(_obs((24, 24, 3)), ACT, **kw)
  model = networks.build_keras_model((24, 24, 3), 18, **kw)
  assert accounting.account(model)["parts"] == accounting.account(net)["parts"]
  assert accounting.account(model)["total"]["params"] == model.count_params()


def test_format_table_and_bad_input():
  net = networks.build_q_network(_obs((36, 36, 4)), ACT, bottleneck="gap")
  table = accounting.format_table(accounting.account(net), per_layer=True)
  assert table.splitlines()[0] == "| part | params | live | FLOPs (fwd/example) |"
  assert "| phi/conv0 |" in table and "| **total** |" in table
  with pytest.raises(ValueError, match="needs a tfgap network"):
    accounting.account(object())
