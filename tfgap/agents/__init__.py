"""tfgap.agents: DQN, Rainbow and DER as TF-Agents agents with compiled updates.

    from tfgap import agents, networks
    net = networks.build_q_network(obs_spec, action_spec, encoder="nature", bottleneck="gap")
    agent = agents.DQNAgent(time_step_spec, action_spec, net)
    loss, priorities = agent.update(replay.sample(agent.batch_size))   # compiled update
    actions = agent.act(observations, epsilon=agent.epsilon_at(env_steps))  # compiled acting
    agent.policy, agent.collect_policy                                   # TF-Agents policies

Rainbow/DER take `networks.build_categorical_q_network(..., dueling=True, noisy=...)`; SACAgent
(continuous actions, DMC) takes `networks.build_sac_network(...)` and acts with
`agent.act(observations, greedy=False)`. Every
hyperparameter is a keyword-only argument (`DQNAgent(..., n_step=3)`), validated by one settings
dataclass (`tfgap.agents.settings`); DER is Rainbow with `settings.DER_DEFAULTS`.
"""

from tfgap import checks

from tfgap.agents.base import default_jit_compile
from tfgap.agents.base import network_is_noisy
from tfgap.agents.base import resolve_jit_compile
from tfgap.agents.base import UpdateResult
from tfgap.agents.dqn import DQNAgent
from tfgap.agents.rainbow import DERAgent
from tfgap.agents.rainbow import RainbowAgent
from tfgap.agents.sac import SAC_DEFAULTS
from tfgap.agents.sac import SACAgent
from tfgap.agents.sac import SACSettings
from tfgap.agents.schedules import linearly_decaying_epsilon
from tfgap.agents.schedules import LinearEpsilon
from tfgap.agents.schedules import ZeroEpsilon
from tfgap.agents.settings import AgentSettings
from tfgap.agents.settings import CommonSettings
from tfgap.agents.settings import DER_DEFAULTS
from tfgap.agents.settings import DQN_DEFAULTS
from tfgap.agents.settings import DQNSettings
from tfgap.agents.settings import RAINBOW_DEFAULTS
from tfgap.agents.settings import RainbowSettings

# Agent name -> (class, kind of network it takes: "q", "categorical" or "sac").
AGENTS = {
    "dqn": (DQNAgent, "q"),
    "rainbow": (RainbowAgent, "categorical"),
    "der": (DERAgent, "categorical"),
    "sac": (SACAgent, "sac"),
}


def agent_class(name):
  """(class, network kind) of an agent name; ValueError naming the accepted names."""
  return AGENTS[checks.check_choice("agent", name, sorted(AGENTS))]


__all__ = ["DQNAgent", "RainbowAgent", "DERAgent", "SACAgent", "AGENTS", "agent_class",
           "linearly_decaying_epsilon", "LinearEpsilon", "ZeroEpsilon", "default_jit_compile",
           "resolve_jit_compile", "network_is_noisy", "UpdateResult", "CommonSettings", "AgentSettings",
           "DQNSettings", "RainbowSettings", "DQN_DEFAULTS",
           "RAINBOW_DEFAULTS", "DER_DEFAULTS", "SACSettings", "SAC_DEFAULTS"]
