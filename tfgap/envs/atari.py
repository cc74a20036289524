"""Atari through ale-py: the Machado et al. (2018) protocol as Dopamine runs it, and Atari100K.

Two backends give the same specs and the same protocol:
- "gymnasium": one `ale_py.env.AtariEnv` (a gymnasium env) per batch entry, wrapped in
  gymnasium's `AtariPreprocessing` (frame skip with a max over the last two frames, grayscale,
  84x84 INTER_AREA resize; the same steps as Dopamine's preprocessing), stepped in turn. Exact
  for every protocol, including Atari100K's life-loss terminals.
- "vector": `ale_py.vector_env.AtariVectorEnv`, ALE's C++ threaded batch with the same
  preprocessing, a few times faster for several envs. It steps every entry on every call, so
  after a life-loss LAST (Atari100K only) the entry's action is carried out while the FIRST step
  is produced (see docs/envs.md); real game overs are exact (ALE resets that entry instead of
  stepping it).

Rewards reach the learner clipped to [-1, 1] when `clip_rewards` (train mode by default);
`pop_episode_stats()` always reports the raw game score.
"""

import numpy as np
from tf_agents.specs import array_spec

from tfgap.envs import core

FIRST, LAST = core.FIRST, core.LAST


def _import_ale():
  try:
    import ale_py  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("Atari needs ale-py (0.12.1, ROMs included) and gymnasium: "
                      "`pip install -r requirements.txt`.") from e
  return ale_py


class AtariGame:
  """One gymnasium AtariEnv + AtariPreprocessing with the protocol's settings."""

  def __init__(self, rom_id, seed, protocol):
    _import_ale()
    from ale_py.env import AtariEnv  # pylint: disable=g-import-not-at-top
    from gymnasium.wrappers import AtariPreprocessing  # pylint: disable=g-import-not-at-top
    self.env = AtariEnv(
        game=rom_id,
        obs_type="grayscale",  # The wrapper reads the screen itself; grayscale is cheapest.
        frameskip=1,  # The wrapper skips frames (and max-pools the last two).
        repeat_action_probability=protocol["sticky_actions"],
        full_action_space=protocol["full_action_space"],
        # The agent-step cap is applied by SerialEnv (Dopamine counts agent steps).
        max_num_frames_per_episode=0,
    )
    self.wrapped = AtariPreprocessing(
        self.env,
        # gymnasium's no-ops are 1..noop_max raw frames; Dopamine's are agent steps: see reset().
        noop_max=0,
        frame_skip=protocol["frame_skip"],
        screen_size=protocol["screen_size"],
        # With life-loss terminals a lost life also ends the frame-skip loop early, as in Dopamine.
        terminal_on_life_loss=protocol["terminal_on_life_loss"],
        grayscale_obs=True,
        grayscale_newaxis=True,
        scale_obs=False,
    )
    self.ale = self.env.ale
    self._seed = seed
    self._seeded = False
    self.num_actions = self.env.action_space.n
    self._lives = 0
    self._noop_max = protocol.get("noop_max", 0)
    self._life_terminal = protocol["terminal_on_life_loss"]
    # Its own stream, so turning no-ops on does not change the emulator's seeds.
    self._noop_rng = np.random.default_rng((seed, 30))

  def reset(self):
    """Starts a new game; with `noop_max`, after randint(0, noop_max) agent steps of NOOP.

    As Dopamine's DataEfficientAtariRunner._initialize_episode
    (dopamine/labs/atari_100k/atari_100k_runner.py): each no-op is a full agent step (frame skip
    and max-pool), a game that ends during them (or loses a life, with life-loss terminals) is
    reset, and the no-ops count neither in the episode's return nor in its length.
    """
    frame = self._reset_game()
    noops = int(self._noop_rng.integers(0, self._noop_max)) if self._noop_max > 0 else 0
    for _ in range(noops):
      frame, _, game_over, _, life_lost = self.step(0)  # Action 0 is NOOP in every action set.
      if game_over or (life_lost and self._life_terminal):
        frame = self._reset_game()
    return frame

  def _reset_game(self):
    if self._seeded:
      frame, _ = self.wrapped.reset()
    else:
      # Seed once; later resets continue the same random stream.
      frame, _ = self.wrapped.reset(seed=self._seed)
      self._seeded = True
    self._lives = self.ale.lives()
    return frame

  def step(self, action):
    frame, reward, _, truncated, _ = self.wrapped.step(int(action))
    # The wrapper's `terminated` includes lost lives when it breaks on them: ask ALE instead.
    game_over = self.ale.game_over()
    lives = self.ale.lives()
    life_lost = lives < self._lives
    self._lives = lives
    return frame, float(reward), game_over, bool(truncated), life_lost

  def rgb_frame(self):
    """The emulator's current screen in colour (210x160x3), as a person sees the game."""
    return self.ale.getScreenRGB()

  def close(self):
    self.wrapped.close()


def vector_env_kwargs(rom_id, num_envs, protocol):
  """Every constructor argument of AtariVectorEnv, set to the protocol's value.

  AtariVectorEnv's own defaults differ from the protocol (repeat_action_probability=0,
  noop_max=30, reward_clipping=True, use_fire_reset=True), so nothing is left to them.
  """
  return dict(
      game=rom_id,
      num_envs=num_envs,
      batch_size=0,  # Synchronous: every call returns all entries.
      num_threads=protocol["num_threads"],
      thread_affinity_offset=-1,  # No core pinning on a machine shared with the learner.
      # ALE counts emulator frames; the protocol's cap is in agent steps.
      max_num_frames_per_episode=protocol["max_episode_steps"] * protocol["frame_skip"],
      repeat_action_probability=protocol["sticky_actions"],
      full_action_space=protocol["full_action_space"],
      continuous=False,
      continuous_action_threshold=0.5,  # Unused with discrete actions.
      autoreset_mode="NextStep",  # The step after a game over resets that entry, as TF-Agents does.
      img_height=protocol["screen_size"],
      img_width=protocol["screen_size"],
      grayscale=True,
      stack_num=1,  # tfgap stacks frames itself (zero-padded after life-loss restarts too).
      frameskip=protocol["frame_skip"],
      maxpool=True,
      noop_max=0,
      episodic_life=False,  # ALE's episodic life fully resets the game: not DER's protocol.
      life_loss_info=False,  # Life loss is read from info["lives"] instead.
      reward_clipping=False,  # Clipped here, so the raw score stays available.
      use_fire_reset=False,
  )


class AtariVectorEnvironment(core.TfgapEnv):
  """A batch of Atari games on ale_py's AtariVectorEnv (C++ threads)."""

  def __init__(self, rom_id, *, protocol, seed, **kwargs):
    _import_ale()
    from ale_py.vector_env import AtariVectorEnv  # pylint: disable=g-import-not-at-top
    num_envs = kwargs["num_envs"]
    self.vector_kwargs = vector_env_kwargs(rom_id, num_envs, protocol)
    self._vec = AtariVectorEnv(**self.vector_kwargs)
    num_actions = int(self._vec.single_action_space.n)
    size = protocol["screen_size"]
    super().__init__(
        protocol=protocol, seed=seed, frame_shape=(size, size, 1),
        stack_size=protocol["stack_size"],
        action_spec=array_spec.BoundedArraySpec((), np.int64, 0, num_actions - 1, name="action"),
        **kwargs)
    self._clip = protocol["clip_rewards"]
    self._life_terminal = protocol["terminal_on_life_loss"]
    self._lives = np.zeros(self.num_envs, np.int64)
    # Entries whose previous ALE step ended the game: ALE resets them on the next call.
    self._ale_resets = np.zeros(self.num_envs, bool)
    self._reset_count = 0

  def _frames(self, obs):
    # [n, 1, H, W] -> [n, H, W, 1]
    return np.transpose(obs, (0, 2, 3, 1))

  def _reset_all(self):
    # Fresh seeds on each explicit reset, so repeated resets do not replay the same games.
    seed = self.seed + self._reset_count * self.num_envs
    self._reset_count += 1
    obs, info = self._vec.reset(seed=seed)
    order = np.asarray(info["env_id"])
    frames = np.empty((self.num_envs,) + self.frame_shape, np.uint8)
    frames[order] = self._frames(obs)
    self._lives[order] = info["lives"]
    self._ale_resets[:] = False
    return frames

  def _step_batch(self, actions):
    n = self.num_envs
    step_type, reward, discount = self._mid_step_arrays()
    obs, raw, terminated, truncated, info = self._vec.step(actions.astype(np.int64, copy=False))
    frames = self._frames(obs)
    env_ids = np.asarray(info["env_id"])
    if np.array_equal(env_ids, np.arange(n)):
      # Synchronous mode returns entries in order: shift all stacks at once (FIRST entries are
      # restarted below anyway).
      self._stacks.push_all(frames)
      pushed = True
    else:
      pushed = False
    lives_now = np.asarray(info["lives"])
    if (pushed and not self._needs_first.any() and not terminated.any() and
        not truncated.any() and not (self._life_terminal and (lives_now < self._lives).any())):
      # The common step, every entry in mid-episode: no per-entry Python work.
      self._episode_return += raw
      self._episode_length += 1
      self._lives[:] = lives_now
      reward[:] = np.clip(raw, -1, 1) if self._clip else raw
      return step_type, reward, discount
    for j, i in enumerate(env_ids):
      lives = int(info["lives"][j])
      frame = frames[j]
      if self._needs_first[i]:
        self._needs_first[i] = False
        step_type[i] = FIRST
        self._stacks.begin(i, frame)
        if self._ale_resets[i]:
          # ALE reset this entry instead of stepping it (NextStep autoreset).
          self._ale_resets[i] = False
          self._episode_return[i] = 0.0
          self._episode_length[i] = 0
        else:
          # Life-loss restart (Atari100K): ALE did step this entry; the step belongs to the
          # same game.
          self._episode_return[i] += raw[j]
          self._episode_length[i] += 1
          if terminated[j] or truncated[j]:
            # The game ended on that hidden step: close it now; ALE resets the entry next call.
            self._record_episode(i, truncated=not terminated[j])
            self._ale_resets[i] = True
            self._needs_first[i] = True
        self._lives[i] = lives
        continue
      if not pushed:
        self._stacks.push(i, frame)
      self._episode_return[i] += raw[j]
      self._episode_length[i] += 1
      reward[i] = min(max(raw[j], -1), 1) if self._clip else raw[j]
      life_lost = lives < self._lives[i]
      self._lives[i] = lives
      if terminated[j] or truncated[j]:
        step_type[i] = LAST
        discount[i] = 0.0 if terminated[j] else 1.0
        self._needs_first[i] = True
        self._ale_resets[i] = True
        self._record_episode(i, truncated=not terminated[j])
      elif life_lost and self._life_terminal:
        step_type[i] = LAST
        discount[i] = 0.0
        self._needs_first[i] = True  # Not an ALE reset: the next FIRST continues this game.
    return step_type, reward, discount

  def _close(self):
    vec, self._vec = self._vec, None
    if vec is not None:
      vec.close()


def make_atari(suite, game, rom_id, num_envs, seed, mode, protocol, batched):
  """Builds the Atari environment for `suite` ("atari" or "atari100k")."""
  backend = protocol["backend"]
  noops = protocol.get("noop_max", 0)
  if backend == "vector" and noops:
    raise ValueError(
        f"Protocol override backend='vector' is not accepted with noop_max={noops}: ALE's vector "
        "env counts no-ops in frames, Dopamine in agent steps. Use backend='gymnasium' (or "
        "'auto'), or noop_max=0.")
  if backend == "auto":
    # The vector backend is exact for the Machado protocol; Atari100K's life-loss restarts and
    # no-op starts are exact only with per-entry games (and DER runs a single env anyway).
    backend = ("vector" if (num_envs > 1 and not protocol["terminal_on_life_loss"] and not noops)
               else "gymnasium")
  protocol = dict(protocol, backend=backend)
  common = dict(suite=suite, name=game, mode=mode, batched=batched)
  if backend == "vector":
    return AtariVectorEnvironment(rom_id, protocol=protocol, seed=seed, num_envs=num_envs,
                                  **common)
  games = [AtariGame(rom_id, seed + i, protocol) for i in range(num_envs)]
  size = protocol["screen_size"]
  num_actions = games[0].num_actions
  return core.SerialEnv(
      games,
      clip_rewards=protocol["clip_rewards"],
      terminal_on_life_loss=protocol["terminal_on_life_loss"],
      max_episode_steps=protocol["max_episode_steps"],
      protocol=protocol, seed=seed, frame_shape=(size, size, 1),
      stack_size=protocol["stack_size"],
      action_spec=array_spec.BoundedArraySpec((), np.int64, 0, num_actions - 1, name="action"),
      **common)
