"""tfgap.networks: pixel encoders (phi), bottlenecks and dense heads (psi) for TF-Agents and Keras.

Pure Keras 2 / TF-Agents: imports nothing of tfgap but `tfgap.compat` and `tfgap.checks`.

    from tfgap import networks
    q_net = networks.build_q_network(obs_spec, action_spec, encoder="impala", width_scale=4,
                                     bottleneck="gap")
"""

from tfgap.networks.bottlenecks import BOTTLENECKS
from tfgap.networks.bottlenecks import Bottleneck
from tfgap.networks.bottlenecks import bottleneck_class
from tfgap.networks.bottlenecks import list_bottlenecks
from tfgap.networks.bottlenecks import make_bottleneck
from tfgap.networks.bottlenecks import register_bottleneck
from tfgap.networks.bottlenecks import TOKENIZATIONS
from tfgap.networks.builders import build_actor_network
from tfgap.networks.builders import build_categorical_q_network
from tfgap.networks.builders import build_critic_network
from tfgap.networks.builders import build_keras_model
from tfgap.networks.builders import build_q_network
from tfgap.networks.builders import build_value_network
from tfgap.networks.builders import keras_model_parts
from tfgap.networks.builders import PixelActorNetwork
from tfgap.networks.builders import PixelCategoricalQNetwork
from tfgap.networks.builders import PixelCriticNetwork
from tfgap.networks.builders import PixelQNetwork
from tfgap.networks.builders import PixelValueNetwork
from tfgap.networks.encoders import ENCODERS
from tfgap.networks.encoders import make_encoder
from tfgap.networks.heads import NoisyDense
from tfgap.networks.heads import set_noise
from tfgap.networks.sac import build_sac_network
from tfgap.networks.sac import PixelSACNetwork
from tfgap.networks import sparse  # Registers the `sparse` bottleneck.

__all__ = [
    "BOTTLENECKS", "ENCODERS", "TOKENIZATIONS", "Bottleneck", "bottleneck_class",
    "list_bottlenecks", "make_bottleneck", "make_encoder", "register_bottleneck",
    "build_q_network", "build_categorical_q_network", "build_actor_network",
    "build_critic_network", "build_value_network", "build_keras_model", "keras_model_parts",
    "PixelQNetwork", "PixelCategoricalQNetwork", "PixelActorNetwork", "PixelCriticNetwork",
    "PixelValueNetwork", "NoisyDense", "set_noise", "build_sac_network", "PixelSACNetwork",
]
