"""A tfgap encoder + GAP as a frozen feature extractor in another Keras model, trained with `fit`.

    python examples/keras_transfer.py
    python examples/keras_transfer.py --q_weights my_q_model.weights.h5 --width_scale 2

Use this when you want tfgap's networks in a TensorFlow project that is not reinforcement
learning: the pieces are ordinary Keras 2 layers. `tfgap.networks.build_keras_model` gives a plain
functional Keras model whose top-level layers are named "phi" (the encoder), "bottleneck" and
"psi" (the head); here phi and the GAP bottleneck are taken out of it, frozen, and topped with a
small classifier for a supervised task: which Atari game is a frame stack from? The frames come
from `tfgap.envs` with random actions; the test frames from other seeds.

GAP is what makes the features reusable at any scale: phi's `H x W x C` map becomes C numbers,
so the new head has C * 64 input weights instead of H * W * C * 64.
"""

# Before TensorFlow is imported: oneDNN CPU kernels on, quiet C++ logs, a stack check.
from tfgap.launch import runtime

runtime.prepare_process()

import argparse  # noqa: E402
import os  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402  tf.keras is Keras 2 (2.15), the Keras tfgap's layers use.

import tfgap.envs  # noqa: E402
import tfgap.networks  # noqa: E402  Also registers tfgap's layers for Keras deserialisation.

GAMES = ("Pong", "Breakout", "SpaceInvaders")
BUDGETS = {
    "full": dict(frames_per_game=600, epochs=8),
    "smoke": dict(frames_per_game=32, epochs=2),
}
STEPS_BETWEEN_FRAMES = 4  # Consecutive frames are near-duplicates; keep every 4th.


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--encoder", default="nature", help="nature or impala")
  parser.add_argument("--width_scale", type=float, default=1.0)
  parser.add_argument("--q_weights", default=None,
                      help="weights of a trained build_keras_model Q-model with these settings "
                           "(model.save_weights); default: phi stays at its initialisation")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", default="runs/example_keras_transfer")
  parser.add_argument("--smoke", action="store_true", help="a tiny budget that checks the plumbing")
  return parser.parse_args()


def collect_frames(game, count, seed):
  """`count` frame stacks of `game` under random actions (Atari protocol: uint8 84x84x4)."""
  env = tfgap.envs.make("atari", game, seed=seed, mode="eval")
  rng = np.random.default_rng(seed)
  spec = env.action_spec()
  frames = []
  time_step = env.reset()
  while len(frames) < count:
    for _ in range(STEPS_BETWEEN_FRAMES):
      action = rng.integers(spec.minimum, spec.maximum + 1)
      time_step = env.step(np.asarray(action, spec.dtype))
    frames.append(time_step.observation)
  env.close()
  return np.stack(frames)


def make_dataset(count, seed):
  """(frames uint8 [N, 84, 84, 4], labels int [N]): `count` frames of each game."""
  frames = [collect_frames(game, count, seed) for game in GAMES]
  labels = [np.full(len(f), i) for i, f in enumerate(frames)]
  return np.concatenate(frames), np.concatenate(labels)


def main():
  args = parse_args()
  budget = BUDGETS["smoke" if args.smoke else "full"]
  tf.keras.utils.set_random_seed(args.seed)

  # The data: a few hundred frame stacks per game, training and test sets from different seeds.
  x_train, y_train = make_dataset(budget["frames_per_game"], seed=args.seed)
  x_test, y_test = make_dataset(budget["frames_per_game"] // 2, seed=args.seed + 1)
  print(f"data: {len(x_train)} training and {len(x_test)} test frame stacks of "
        f"{', '.join(GAMES)}", flush=True)

  # The tfgap part: a Q-model (18 actions, the full Atari action set) with a GAP bottleneck. In
  # your project its weights come from training (RL or otherwise); here they are loaded from
  # --q_weights when given.
  q_model = tfgap.networks.build_keras_model((84, 84, 4), 18, encoder=args.encoder,
                                             width_scale=args.width_scale, bottleneck="gap")
  if args.q_weights:
    q_model.load_weights(args.q_weights)
  phi = q_model.get_layer("phi")
  gap = q_model.get_layer("bottleneck")
  phi.trainable = False  # Frozen: fit trains only the new head.

  # The new model: frames -> phi -> GAP -> a small classifier. uint8 frames go in as they are;
  # phi divides by 255 itself.
  frames = tf.keras.Input((84, 84, 4), dtype=tf.uint8, name="frames")
  features = gap(phi(frames))
  hidden = tf.keras.layers.Dense(64, activation="relu", name="classifier_hidden")(features)
  logits = tf.keras.layers.Dense(len(GAMES), name="classifier_logits")(hidden)
  model = tf.keras.Model(frames, logits, name="which_game")
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  model.summary(print_fn=lambda line: print(line, flush=True))

  model.fit(x_train, y_train, batch_size=32, epochs=budget["epochs"],
            validation_data=(x_test, y_test), verbose=2)
  _, accuracy = model.evaluate(x_test, y_test, verbose=0)
  print(f"test accuracy: {accuracy:.3f} (chance {1 / len(GAMES):.3f})", flush=True)

  # Save the whole model (architecture, weights, frozen flags) in Keras' .keras format and load
  # it back, as another program would; tfgap must be importable there (its layers are custom
  # Keras classes). For a consumer without tfgap, `tf.saved_model.save(model, folder)` writes a
  # SavedModel that `tf.saved_model.load` runs with TensorFlow alone.
  os.makedirs(args.out, exist_ok=True)
  path = os.path.join(args.out, "which_game.keras")
  model.save(path)
  reloaded = tf.keras.models.load_model(path)
  difference = np.max(np.abs(reloaded.predict(x_test, verbose=0) -
                             model.predict(x_test, verbose=0)))
  frozen = not reloaded.get_layer("phi").trainable
  print(f"reloaded: {path}, max |logit difference| {difference:.2e}, phi frozen: {frozen}",
        flush=True)
  if difference > 1e-5 or not frozen:
    raise SystemExit("the reloaded model differs from the trained one")


if __name__ == "__main__":
  main()
