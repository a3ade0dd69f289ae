"""Bernoulli restricted Boltzmann machine trained by contrastive divergence.

Binary visible units `v` and binary hidden units `h`, connected only across the two layers by `W`,
with a visible bias `b` and a hidden bias `c`. The energy is `E(v, h) = -v.b - h.c - v.W.h`, so
`P(h = 1 | v) = sigmoid(v W + c)` and `P(v = 1 | h) = sigmoid(h W^T + b)`.

Training is not backpropagation: `train_step` estimates the log-likelihood gradient
`<v h>_data - <v h>_model` by contrastive divergence (CD-k: a k-step Gibbs chain started at the
data) or persistent contrastive divergence (PCD, scikit-learn's `BernoulliRBM`: chains that carry
over from one batch to the next), and applies it with explicit variable updates (momentum and weight
decay as in Hinton's "A Practical Guide to Training RBMs"). Sampling is never differentiated.

The free energy, the pseudo-likelihood and the PCD update follow `sklearn.neural_network.BernoulliRBM`
(`_free_energy`, `score_samples`, `_fit`), so figures compare one to one.
"""

import dataclasses
import math

import keras
from keras import ops

from zoo import compiling
from zoo.errors import ZooError
from zoo.models import steps
from zoo.registry import check_range, register


@keras.saving.register_keras_serializable(package="zoo")
class RBM(keras.Model):
    """A Bernoulli-Bernoulli RBM whose `fit` runs contrastive divergence.

    `call` (and so `predict`) returns the hidden probabilities `P(h = 1 | v)`: the learned features.

    Args:
        input_shape: shape of one visible example without the batch axis, e.g. (64,) or (8, 8, 1);
            values in [0, 1] (binary, or probabilities).
        hidden_units: number of hidden units.
        k: Gibbs steps per update (CD-k or PCD-k).
        persistent: True for persistent CD (chains kept across batches), False for CD-k.
        chains: number of persistent chains (PCD only; scikit-learn uses its batch size).
        learning_rate: step size on the averaged CD statistics.
        momentum: momentum of the parameter updates (0 disables it).
        weight_decay: L2 penalty on `W` added to its gradient.
        updates_per_batch: CD updates per `fit` batch: the batch is split into this many consecutive
            minibatches, applied one after another inside one compiled step.
        seed: seed of the initial weights and of the sampling.
        **kwargs: passed to `keras.Model` (name, ...).
    """

    def __init__(
        self,
        input_shape=(64,),
        hidden_units=64,
        k=1,
        persistent=True,
        chains=10,
        learning_rate=0.06,
        momentum=0.0,
        weight_decay=0.0,
        updates_per_batch=1,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Config ===
        self.visible_shape = tuple(int(d) for d in input_shape)
        self.hidden_units = int(hidden_units)
        self.k = int(k)
        self.persistent = bool(persistent)
        self.chains = int(chains)
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.updates_per_batch = int(updates_per_batch)
        self.seed = seed
        self.visible_units = int(math.prod(self.visible_shape))
        self.build((None,) + self.visible_shape)

    def build(self, input_shape):
        # === Weights ===
        visible, hidden = self.visible_units, self.hidden_units
        # scikit-learn's initialisation: W ~ N(0, 0.01), zero biases.
        self.W = self.add_weight(
            shape=(visible, hidden),
            initializer=keras.initializers.RandomNormal(stddev=0.01, seed=self.seed),
            name="W",
            aggregation="only_first_replica",
        )
        self.visible_bias = self.add_weight(
            shape=(visible,), initializer="zeros", name="visible_bias", aggregation="only_first_replica"
        )
        self.hidden_bias = self.add_weight(
            shape=(hidden,), initializer="zeros", name="hidden_bias", aggregation="only_first_replica"
        )
        # Training state, saved with the model so that training can resume where it stopped.
        self.velocities = [
            self.add_weight(
                shape=variable.shape,
                initializer="zeros",
                trainable=False,
                name=f"{variable.name}_velocity",
                aggregation="only_first_replica",
            )
            for variable in (self.W, self.visible_bias, self.hidden_bias)
        ]
        self.chain_hiddens = self.add_weight(
            shape=(max(self.chains, 1), hidden),
            initializer="zeros",
            trainable=False,
            name="chain_hiddens",
            aggregation="only_first_replica",
        )
        # The noise of a step is a hash of (seed, step count): a counter rather than a Keras
        # SeedGenerator, whose state update under tf.distribute launched its own collective op.
        initial_seed = self.seed if self.seed is not None else int(keras.random.randint((), 0, 2**31 - 1))
        self.noise_state = self.add_weight(
            shape=(2,),
            dtype="int32",
            trainable=False,
            name="noise_state",
            initializer=lambda shape, dtype=None: ops.convert_to_tensor([initial_seed, 0], "int32"),
            aggregation="only_first_replica",
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_error")
        self.pseudo_likelihood_tracker = keras.metrics.Mean(name="pseudo_likelihood")
        self.built = True

    # === Conditionals ===
    def _flat(self, x):
        return ops.reshape(ops.cast(x, self.W.dtype), (-1, self.visible_units))

    def _hidden_logits(self, v):
        return ops.matmul(v, self.W) + self.hidden_bias

    def _visible_logits(self, h):
        return ops.matmul(h, ops.transpose(self.W)) + self.visible_bias

    def _next_key(self):
        """A fresh noise key (the same on every replica): the noise state, then advance it."""
        key = ops.cast(ops.convert_to_tensor(self.noise_state), "uint32")
        self.noise_state.assign(self.noise_state + ops.convert_to_tensor([0, 1], "int32"))
        return key

    def _bernoulli(self, probabilities, key, stream):
        return ops.cast(_uniform(key, stream, ops.shape(probabilities)) < probabilities, probabilities.dtype)

    def _free_energy_from_logits(self, v, hidden_logits):
        # F(v) = -v.b - sum_j softplus((v W + c)_j): scikit-learn's `_free_energy`.
        return -ops.matmul(v, self.visible_bias[:, None])[:, 0] - ops.sum(ops.softplus(hidden_logits), axis=1)

    def _pseudo_likelihood_from_logits(self, v, hidden_logits, flip, W=None, visible_bias=None):
        """scikit-learn's `score_samples` estimator: flip one visible unit per row (`flip`, indices).

        log PL(v) ~ D * log sigmoid(F(v~) - F(v)), where v~ is v with unit `flip` flipped; the
        flipped logits are v W + c plus (1 - 2 v_i) times row i of W, so no second matmul is needed.
        """
        W = self.W if W is None else W
        visible_bias = self.visible_bias if visible_bias is None else visible_bias
        one_hot = ops.one_hot(flip, self.visible_units, dtype=v.dtype)
        flipped_value = ops.sum(v * one_hot, axis=1)
        sign = 1.0 - 2.0 * flipped_value
        flipped_logits = hidden_logits + sign[:, None] * ops.take(W, flip, axis=0)
        # F(v~) - F(v) = -sign * b_i - sum softplus(flipped logits) + sum softplus(logits)
        gap = (
            -sign * ops.take(visible_bias, flip, axis=0)
            - ops.sum(ops.softplus(flipped_logits), axis=1)
            + ops.sum(ops.softplus(hidden_logits), axis=1)
        )
        return -self.visible_units * ops.softplus(-gap)

    # === Forward pass ===
    def call(self, inputs):
        return ops.sigmoid(self._hidden_logits(self._flat(inputs)))

    # === Training ===
    # Contrastive divergence is not backpropagation: nothing is differentiated, so no backend needs
    # a gradient tape. The step is written once, in keras.ops, as it reads on TensorFlow and PyTorch
    # (`train_step(data)`, variables assigned in place); JAX's trainer calls a stateless
    # `train_step(state, data)`, which runs that same code on the values in `state`.
    def train_step(self, *args):
        """`fit`'s step: `train_step(data)` on TensorFlow and PyTorch, `train_step(state, data)` on JAX."""
        return self._step(self._contrastive_divergence_step, *args)

    def test_step(self, *args):
        """`evaluate`'s step: `test_step(data)`, or `test_step(state, data)` on JAX."""
        return self._step(self._evaluation_step, *args)

    def _step(self, step, *args):
        backend = steps.backend()
        if backend == "jax":
            state, data = args
            return steps.run_stateless(self, state, lambda: step(data))
        if backend == "torch":
            import torch

            # Sampling is never differentiated: no autograd graph to record.
            with torch.no_grad():
                return step(*args)
        return step(*args)

    def compile(self, **kwargs):
        super().compile(**kwargs)
        if steps.backend() == "jax":
            # JAX's trainer reads `model.optimizer.variables`: an RBM has no optimizer, so none.
            self.optimizer = steps.OptimizerVariables()

    def _contrastive_divergence_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        v = self._flat(x)
        dtype = v.dtype
        rows = ops.shape(v)[0]
        updates = self.updates_per_batch
        layout = _layout(rows, updates)
        key = self._next_key()
        W0, b0, c0 = (ops.convert_to_tensor(t) for t in (self.W, self.visible_bias, self.hidden_bias))

        # The batch is split into `updates` consecutive minibatches (zero-padded, with a mask), each
        # one CD update, applied one after another inside this compiled step.
        padding = layout.part * updates - rows
        parts = ops.reshape(
            ops.concatenate([v, ops.zeros((padding, self.visible_units), dtype)], axis=0),
            (updates, layout.part, self.visible_units),
        )
        masks = ops.reshape(
            ops.concatenate([ops.ones((rows,), dtype), ops.zeros((padding,), dtype)], axis=0), (updates, layout.part)
        )
        noise = self._draw_noise(key, layout, updates)
        model_rows = self.chains if self.persistent else layout.part

        def update(j, state):
            W, b, c, velocity_w, velocity_b, velocity_c, chains, last_model, last_mask = state
            v_data, mask = parts[j], masks[j]
            h_data = ops.sigmoid(ops.matmul(v_data, W) + c)

            def hidden_sample(v_now, uniform):
                return ops.cast(uniform < ops.sigmoid(ops.matmul(v_now, W) + c), dtype)

            def visible_sample(h_now, uniform):
                return ops.cast(uniform < ops.sigmoid(ops.matmul(h_now, ops.transpose(W)) + b), dtype)

            if self.persistent:
                h = chains
                model_mask = ops.ones((self.chains,), dtype)
            else:
                h = ops.cast(noise["start"][j] < h_data, dtype)
                model_mask = mask
            for step in range(self.k):
                v_model = visible_sample(h, noise["visible"][j, step])
                if step < self.k - 1:
                    h = hidden_sample(v_model, noise["hidden"][j, step])
            h_model = ops.sigmoid(ops.matmul(v_model, W) + c)

            def statistics(v_now, h_now, weights):
                # `weights` masks the padding rows (None: every row counts, as the chains do).
                if weights is None:
                    return [
                        ops.matmul(ops.transpose(v_now), h_now),
                        ops.sum(v_now, axis=0),
                        ops.sum(h_now, axis=0),
                        ops.cast(ops.shape(v_now)[0], dtype),
                    ]
                weighted = v_now * weights[:, None]
                return [
                    ops.matmul(ops.transpose(weighted), h_now),
                    ops.sum(weighted, axis=0),
                    ops.sum(h_now * weights[:, None], axis=0),
                    ops.sum(weights),
                ]

            positive = statistics(v_data, h_data, mask)
            if self.persistent:
                # The chains do not depend on the data: every replica runs the same chains with the
                # same random numbers, so their statistics are already global.
                negative = statistics(v_model, h_model, None)
                positive = _sum_over_replicas(positive, after=layout.ready)
            else:
                negative = statistics(v_model, h_model, model_mask)
                positive, negative = _sum_over_replicas([positive, negative], after=layout.ready)
            count, model_count = positive[3], negative[3]
            # A minibatch that is only padding (the end of a short last batch) changes nothing.
            active = ops.cast(count > 0, dtype)
            count, model_count = ops.maximum(count, 1.0), ops.maximum(model_count, 1.0)

            gradients = [
                positive[0] / count - negative[0] / model_count,
                positive[1] / count - negative[1] / model_count,
                positive[2] / count - negative[2] / model_count,
            ]
            if self.weight_decay:
                gradients[0] = gradients[0] - self.weight_decay * W
            new = []
            for variable, velocity, gradient in zip((W, b, c), (velocity_w, velocity_b, velocity_c), gradients):
                if self.momentum:
                    velocity = (
                        active * (self.momentum * velocity + self.learning_rate * gradient) + (1 - active) * velocity
                    )
                    new.append((variable + active * velocity, velocity))
                else:
                    # Without momentum the velocity is just the last step (kept for a later resume).
                    step = active * self.learning_rate * gradient
                    new.append((variable + step, step))
            if self.persistent:
                # As scikit-learn: the chains keep sampled hidden states of the negative particles.
                sampled = ops.cast(noise["chain"][j] < h_model, dtype)
                chains = active * sampled + (1 - active) * chains
            last_model = active * v_model + (1 - active) * last_model
            last_mask = active * model_mask + (1 - active) * last_mask
            return (new[0][0], new[1][0], new[2][0], new[0][1], new[1][1], new[2][1], chains, last_model, last_mask)

        variables = [self.W, self.visible_bias, self.hidden_bias, *self.velocities, self.chain_hiddens]
        state = tuple(ops.convert_to_tensor(variable) for variable in variables) + (
            ops.zeros((model_rows, self.visible_units), dtype),
            ops.zeros((model_rows,), dtype),
        )
        if updates > 1 and _replica_context() is None:
            state = ops.fori_loop(0, updates, update, state)
        else:
            # Unrolled: a cross-replica sum cannot sit inside a loop under tf.distribute.
            for j in range(updates):
                state = update(j, state)
        for variable, value in zip(variables, state[:6] + ((state[6],) if self.persistent else ())):
            variable.assign(value)

        # Monitoring, with the weights from before the step (as Keras reports a loss): scikit-learn's
        # pseudo-likelihood estimate and the mean-field reconstruction error of the batch, and as the
        # loss the free-energy gap F(data) - F(negative particles of the step's last update), the
        # quantity whose gradient contrastive divergence follows.
        hidden_logits = ops.matmul(v, W0) + c0
        data_energy = -ops.matmul(v, b0[:, None])[:, 0] - ops.sum(ops.softplus(hidden_logits), axis=1)
        flip = self._random_units(key, _FLIP, rows)
        pseudo_likelihood = self._pseudo_likelihood_from_logits(v, hidden_logits, flip, W0, b0)
        reconstruction = ops.sigmoid(ops.matmul(ops.sigmoid(hidden_logits), ops.transpose(W0)) + b0)
        squared_error = ops.mean(ops.square(v - reconstruction), axis=1)
        last_model, last_mask = state[7], state[8]
        model_energy = -ops.matmul(last_model, b0[:, None])[:, 0] - ops.sum(
            ops.softplus(ops.matmul(last_model, W0) + c0), axis=1
        )
        sums = [ops.sum(pseudo_likelihood), ops.sum(squared_error), ops.sum(data_energy), ops.cast(rows, dtype)]
        if self.persistent:
            pl_sum, se_sum, energy_sum, total = _sum_over_replicas(sums, after=state[0])
            model_energy_mean = ops.mean(model_energy)
        else:
            pl_sum, se_sum, energy_sum, total, model_sum, model_count = _sum_over_replicas(
                sums + [ops.sum(model_energy * last_mask), ops.sum(last_mask)], after=state[0]
            )
            model_energy_mean = model_sum / ops.maximum(model_count, 1.0)
        self.loss_tracker.update_state(energy_sum / total - model_energy_mean, sample_weight=total)
        self.reconstruction_tracker.update_state(se_sum / total, sample_weight=total)
        self.pseudo_likelihood_tracker.update_state(pl_sum / total, sample_weight=total)
        return {metric.name: metric.result() for metric in self.metrics}

    def _draw_noise(self, key, layout, updates):
        """Uniform noise for every Gibbs step of the step's minibatches, drawn up front.

        The chains of PCD are the same on every replica, and so is their noise. The noise of CD-k's
        data rows is indexed by the row's place in the global batch, so that a row gets the same
        random numbers whatever the number of replicas (the update is then exactly one device's).
        """
        k, hidden, visible = self.k, self.hidden_units, self.visible_units
        if self.persistent:
            return {
                "visible": _uniform(key, _VISIBLE, (updates, k, self.chains, visible)),
                "hidden": _uniform(key, _HIDDEN, (updates, k, self.chains, hidden)),
                "chain": _uniform(key, _CHAIN, (updates, self.chains, hidden)),
            }

        def rows(stream, shape):
            return _uniform(key, stream, shape, axis=len(shape) - 2, offset=layout.offset, extent=layout.slots)

        return {
            "start": rows(_START, (updates, layout.part, hidden)),
            "visible": rows(_VISIBLE, (updates, k, layout.part, visible)),
            "hidden": rows(_HIDDEN, (updates, k, layout.part, hidden)),
        }

    def _random_units(self, key, stream, rows):
        """One random visible-unit index per row (the unit the pseudo-likelihood flips)."""
        index = ops.cast(_uniform(key, stream, (rows,)) * self.visible_units, "int32")
        return ops.minimum(index, self.visible_units - 1)

    def _evaluation_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        v = self._flat(x)
        rows = ops.shape(v)[0]
        key = self._next_key()
        hidden_logits = self._hidden_logits(v)
        h_data = ops.sigmoid(hidden_logits)
        flip = self._random_units(key, _FLIP, rows)
        pseudo_likelihood = self._pseudo_likelihood_from_logits(v, hidden_logits, flip)
        reconstruction = ops.sigmoid(self._visible_logits(h_data))
        squared_error = ops.mean(ops.square(v - reconstruction), axis=1)
        # The loss as in training: free-energy gap between the data and the negative particles
        # (the persistent chains' visible samples for PCD, k Gibbs steps from the data for CD-k).
        if self.persistent:
            h = self.chain_hiddens
        else:
            h = self._bernoulli(h_data, key, _START)
        for step in range(self.k):
            v_model = self._bernoulli(ops.sigmoid(self._visible_logits(h)), key, _STEPS + 2 * step)
            if step < self.k - 1:
                h = self._bernoulli(ops.sigmoid(self._hidden_logits(v_model)), key, _STEPS + 2 * step + 1)
        model_energy = self._free_energy_from_logits(v_model, self._hidden_logits(v_model))
        data_energy = self._free_energy_from_logits(v, hidden_logits)
        sums = [ops.sum(pseudo_likelihood), ops.sum(squared_error), ops.sum(data_energy), ops.cast(rows, v.dtype)]
        if self.persistent:
            # The chains are the same on every replica: their mean is already global.
            pl_sum, se_sum, energy_sum, total = _sum_over_replicas(sums)
            gap_sum = energy_sum - total * ops.mean(model_energy)
        else:
            pl_sum, se_sum, energy_sum, total, model_sum = _sum_over_replicas(sums + [ops.sum(model_energy)])
            gap_sum = energy_sum - model_sum
        self.loss_tracker.update_state(gap_sum / total, sample_weight=total)
        self.reconstruction_tracker.update_state(se_sum / total, sample_weight=total)
        self.pseudo_likelihood_tracker.update_state(pl_sum / total, sample_weight=total)
        return {metric.name: metric.result() for metric in self.metrics}

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.pseudo_likelihood_tracker]

    # === What a user calls ===
    def transform(self, x, batch_size=256):
        """Return the hidden probabilities `P(h = 1 | v)` of `x` as a numpy array (the features)."""
        return self.predict(x, batch_size=batch_size, verbose=0)

    def reconstruct(self, x):
        """Return the mean-field reconstruction `P(v = 1 | P(h | v))` of `x`, shaped like `x`."""
        v = self._flat(x)
        probabilities = ops.sigmoid(self._visible_logits(ops.sigmoid(self._hidden_logits(v))))
        return ops.convert_to_numpy(ops.reshape(probabilities, (-1,) + self.visible_shape))

    def gibbs(self, v):
        """One Gibbs step v -> h -> v with sampling (scikit-learn's `gibbs`); returns binary visibles."""
        key = self._next_key()
        h = self._bernoulli(ops.sigmoid(self._hidden_logits(self._flat(v))), key, _HIDDEN)
        sample = self._bernoulli(ops.sigmoid(self._visible_logits(h)), key, _VISIBLE)
        return ops.convert_to_numpy(ops.reshape(sample, (-1,) + self.visible_shape))

    def sample(self, n, steps=1000, start=None, seed=None):
        """Draw `n` visible samples by running `steps` Gibbs steps.

        Args:
            n: number of samples (ignored when `start` is given).
            steps: Gibbs steps from the start; more steps mix further from it.
            start: visible states to start from (default: uniform random binary states).
            seed: seed of this sampling (default: the model's own sampling stream).

        Returns:
            The visible probabilities `P(v = 1 | h)` after the last step, shaped (n, *input_shape):
            smoother to look at than the binary states they are sampled from.
        """
        key = self._next_key() if seed is None else ops.convert_to_tensor([seed, 0], "uint32")
        if start is None:
            v = ops.cast(_uniform(key, _START, (int(n), self.visible_units)) < 0.5, self.W.dtype)
        else:
            v = self._flat(start)

        chain = self._gibbs_chain
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            # Compiled as one graph: a thousand eager Gibbs steps took 85 s on a busy 2-core machine.
            chain = tf.function(chain)
        probabilities = chain(v, key, ops.convert_to_tensor(int(steps), "int32"))
        return ops.convert_to_numpy(ops.reshape(probabilities, (-1,) + self.visible_shape))

    def _gibbs_chain(self, v, key, steps):
        rows = ops.shape(v)[0]

        def gibbs_step(step, state):
            v, _ = state
            stream = _STEPS + 2 * step
            h = ops.cast(
                _uniform(key, stream, (rows, self.hidden_units)) < ops.sigmoid(self._hidden_logits(v)), v.dtype
            )
            probabilities = ops.sigmoid(self._visible_logits(h))
            v = ops.cast(_uniform(key, stream + 1, (rows, self.visible_units)) < probabilities, v.dtype)
            return v, probabilities

        return ops.fori_loop(0, steps, gibbs_step, (v, v))[1]

    def free_energy(self, x):
        """Return the free energy `F(v) = -log sum_h exp(-E(v, h))` of each row of `x` (numpy)."""
        v = self._flat(x)
        return ops.convert_to_numpy(self._free_energy_from_logits(v, self._hidden_logits(v)))

    def pseudo_likelihood(self, x, flip=None, seed=None):
        """Return scikit-learn's stochastic pseudo-likelihood estimate of each row of `x` (numpy).

        Args:
            x: binary visible rows.
            flip: index of the visible unit to flip in each row (default: drawn at random); giving
                scikit-learn's own indices reproduces its `score_samples` exactly.
            seed: seed of the random indices when `flip` is not given.
        """
        v = self._flat(x)
        if flip is None:
            key = self._next_key() if seed is None else ops.convert_to_tensor([seed, 0], "uint32")
            flip = self._random_units(key, _FLIP, ops.shape(v)[0])
        flip = ops.cast(ops.convert_to_tensor(flip), "int32")
        return ops.convert_to_numpy(self._pseudo_likelihood_from_logits(v, self._hidden_logits(v), flip))

    def make_train_function(self, force=False):
        self._no_jit_where_it_fails()
        return super().make_train_function(force)

    def make_test_function(self, force=False):
        self._no_jit_where_it_fails()
        return super().make_test_function(force)

    def make_predict_function(self, force=False):
        self._no_jit_where_it_fails()
        return super().make_predict_function(force)

    def _no_jit_where_it_fails(self):
        # XLA cannot compile a step whose variables live on several devices under tf.distribute
        # ("Trying to access resource ... located in device CPU:1 from device CPU:0"): run the
        # step as a plain graph there, so that `--jit` and `--devices all` go together.
        strategy = getattr(self, "distribute_strategy", None)
        if self.jit_compile and strategy is not None and strategy.num_replicas_in_sync > 1:
            self.jit_compile = False
        if self.jit_compile and steps.backend() == "torch":
            # torch.compile traces the minibatch loop unrolled (Keras' fori_loop is a Python loop on
            # PyTorch): the recipe's 50 updates per batch had not compiled after 9 minutes on CPU.
            self.jit_compile = False

    def compile_from_config(self, config):
        # Keras's own version builds `self.optimizer`, which an RBM does not have (its updates are
        # explicit): compile with the saved settings and nothing more.
        self.compile(**keras.saving.deserialize_keras_object(config))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "input_shape": self.visible_shape,
                "hidden_units": self.hidden_units,
                "k": self.k,
                "persistent": self.persistent,
                "chains": self.chains,
                "learning_rate": self.learning_rate,
                "momentum": self.momentum,
                "weight_decay": self.weight_decay,
                "updates_per_batch": self.updates_per_batch,
                "seed": self.seed,
            }
        )
        return config


# === Noise ===
# Counter-based: element i of a draw is a hash of (i, key, stream). XLA's CPU lowering of the stateless
# Philox generator behind `keras.random` took about 1.3 us per number here, which made the compiled
# training step 5x slower than without XLA; this hash (murmur3's finalizer, twice) takes about 0.01 us.
# Indexing by position in the global batch also lets every replica draw exactly its own rows' noise.

_START, _VISIBLE, _HIDDEN, _CHAIN, _FLIP, _STEPS = 1, 2, 3, 4, 5, 16
_GOLDEN = 0x9E3779B9


def _u32(x):
    """`x` modulo 2**32: uint32 arithmetic wraps by itself, except on PyTorch, where Keras holds
    uint32 values in int64 (the low 32 bits of a wrapped int64 product are still the right ones)."""
    if steps.backend() != "torch":
        return x
    return ops.bitwise_and(x, ops.convert_to_tensor(0xFFFFFFFF, x.dtype))


def _mix(x):
    """murmur3's 32-bit finalizer: a bijection on uint32 whose output bits all depend on every input bit."""
    x = ops.bitwise_xor(x, ops.right_shift(x, 16))
    x = _u32(x * ops.convert_to_tensor(0x85EBCA6B, "uint32"))
    x = ops.bitwise_xor(x, ops.right_shift(x, 13))
    x = _u32(x * ops.convert_to_tensor(0xC2B2AE35, "uint32"))
    return ops.bitwise_xor(x, ops.right_shift(x, 16))


def _uniform(key, stream, shape, axis=None, offset=0, extent=None):
    """Uniform float32 noise in [0, 1) of `shape`, as a slice of a larger virtual draw.

    Args:
        key: uint32 pair from the seed generator.
        stream: integer that separates the draws made with one key.
        shape: shape of the noise returned (entries may be tensors).
        axis: an axis along which the returned noise is the slice [offset, offset + shape[axis]) of
            a draw of length `extent` (this replica's rows within the global batch).
        offset: start of the slice along `axis`.
        extent: length of the whole draw along `axis`.
    """
    rank = len(shape)
    counter = ops.zeros((), "uint32")
    stride = ops.ones((), "uint32")
    for i in reversed(range(rank)):
        index = ops.arange(shape[i], dtype="int32")
        if i == axis:
            index = index + offset
        index = ops.reshape(index, [-1 if j == i else 1 for j in range(rank)])
        counter = _u32(counter + ops.cast(index, "uint32") * stride)
        stride = _u32(stride * ops.cast(extent if i == axis else shape[i], "uint32"))
    stream = _u32(ops.cast(stream, "uint32") * ops.convert_to_tensor(_GOLDEN, "uint32"))
    first = _mix(_u32(key[0] + stream))
    second = _mix(_u32(ops.bitwise_xor(key[1], first) + ops.convert_to_tensor(_GOLDEN, "uint32")))
    bits = _mix(_u32(_mix(ops.bitwise_xor(counter, first)) + second))
    return ops.cast(ops.right_shift(bits, 8), "float32") * (1.0 / (1 << 24))


# === Several replicas ===
# TensorFlow-specific on purpose: Keras has no backend-neutral collective, and under tf.distribute
# each replica sees only its share of the batch. Summing the statistics over the replicas and
# dividing by the global row count gives every replica the update one device would make.


def _replica_context():
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


class _Layout:
    """Where this replica's rows sit in the global batch, per minibatch.

    Attributes:
        part: this replica's rows per minibatch (its rows split into `updates` parts).
        offset: first global slot of this replica's rows within a minibatch.
        slots: slots per minibatch over all replicas (`part` on one device).
    """

    def __init__(self, part, offset, slots, ready=None):
        self.part, self.offset, self.slots, self.ready = part, offset, slots, ready


def _layout(rows, updates):
    context = _replica_context()
    if context is None:
        part = (rows + updates - 1) // updates
        return _Layout(part, 0, part)
    replicas = context.num_replicas_in_sync
    replica = context.replica_id_in_sync_group
    # Float, not int32: int32 collectives took another path on logical CPUs and desynchronised the
    # replicas' collective ops ("Shape mismatch in the collective instance").
    counts = context.all_reduce("sum", ops.one_hot(replica, replicas, dtype="float32") * ops.cast(rows, "float32"))
    widest = ops.cast(ops.max(ops.ceil(counts / updates)), "int32")
    return _Layout((rows + updates - 1) // updates, widest * replica, widest * replicas, ready=counts)


def _sum_over_replicas(values, after=None):
    """Sum `values` over the replicas, after the tensor `after` (the previous sum) is computed.

    Collective ops must run in the same order on every replica; two sums that do not depend on each
    other were seen to run in different orders ("Shape mismatch in the collective instance").
    """
    context = _replica_context()
    if context is None:
        return values
    import tensorflow as tf

    with tf.control_dependencies([after] if after is not None else []):
        values = tf.nest.map_structure(tf.identity, values)
    return context.all_reduce("sum", values)


# === Registered builder ===


@dataclasses.dataclass(frozen=True)
class ContrastiveDivergence(compiling.Training):
    """No optimizer: `fit` applies contrastive-divergence updates (CD-k, or persistent CD as
    scikit-learn's BernoulliRBM) with momentum and weight decay, reporting the reconstruction error
    and the pseudo-likelihood.

    Args:
        k: Gibbs steps per update: CD-k, or PCD-k when persistent.
        persistent: persistent CD as scikit-learn's BernoulliRBM (True) or CD-k from the data (False).
        learning_rate: step size on the batch-averaged statistics (scikit-learn's learning_rate).
        momentum: momentum of the updates, in [0, 1).
        weight_decay: L2 penalty coefficient on W.
        updates_per_batch: CD updates per fit batch, each on one consecutive slice of it: fit with
            batch_size 1000 and 100 updates makes scikit-learn's updates of 10 rows in one compiled step.
        steps_per_execution: batches per compiled call of `fit`: larger runs faster on small batches.
    """

    k: int = 1
    persistent: bool = True
    learning_rate: float = 0.06
    momentum: float = 0.0
    weight_decay: float = 0.0
    updates_per_batch: int = 1
    steps_per_execution: int = 1

    def check(self):
        if self.k < 1:
            raise ZooError(f"'k' (Gibbs steps per update) must be at least 1. Received: k={self.k}")
        check_range("learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_range("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        check_range("weight_decay", self.weight_decay, low=0.0)
        check_range("steps_per_execution", self.steps_per_execution, low=1)
        check_range("updates_per_batch", self.updates_per_batch, low=1)

    def compile(self, model, architecture):
        # The update rule is the RBM's own (train_step reads these attributes when `fit` traces
        # it, and get_config saves them): they are set here, not given to an optimizer.
        model.k = int(self.k)
        model.persistent = bool(self.persistent)
        model.learning_rate = float(self.learning_rate)
        model.momentum = float(self.momentum)
        model.weight_decay = float(self.weight_decay)
        model.updates_per_batch = int(self.updates_per_batch)
        # XLA as Keras decides ("auto": on with a GPU, off on CPU); `model.jit_compile = True` or
        # `zoo train rbm --jit` turns it on (on CPU it makes the recipe's step about 4x faster
        # after a compile of seconds).
        model.compile(optimizer=None, steps_per_execution=self.steps_per_execution, jit_compile="auto")


@register(
    "rbm",
    technique="rbm",
    tasks=("feature_learning", "density_estimation", "generation", "recommendation"),
    summary="Bernoulli restricted Boltzmann machine trained by contrastive divergence (CD-k or PCD).",
    when_to_use="Unsupervised features or a generative model of binary data (binarized images, "
    "user x item matrices); the classic pre-training block of deep belief nets.",
    inputs="Float tensor (batch, *input_shape) of binary values (or probabilities) in [0, 1].",
    outputs="Hidden probabilities P(h = 1 | v), shape (batch, hidden_units); `reconstruct`, `sample`, "
    "`free_energy` and `pseudo_likelihood` are methods.",
    recipe="rbm",
    training=ContrastiveDivergence,
    exports="tf_saved_model, onnx, litert: the hidden features of binary rows.",
    search_space={"learning_rate": "log:0.01..0.2", "hidden_units": "int:32..256", "momentum": "0..0.9"},
)
def rbm(
    *,
    input_shape: tuple[int, ...] = (64,),
    hidden_units: int = 64,
    chains: int = 10,
    seed: int = 0,
):
    """Build a Bernoulli RBM (`zoo.get` compiles it with `ContrastiveDivergence` for `fit`).

    Args:
        input_shape: shape of one visible example, e.g. 64 or 8,8,1 (flattened inside).
        hidden_units: number of hidden units (features).
        chains: number of persistent Gibbs chains (scikit-learn uses its batch size, 10); their
            state is a weight of the model.
        seed: seed of the initial weights and the sampling.

    Returns:
        A built `RBM`.

    Raises:
        ZooError: for no hidden units, or another value out of range.
    """
    if hidden_units < 1:
        raise ZooError(
            f"'hidden_units' must be at least 1: an RBM needs hidden units. Received: hidden_units={hidden_units}"
        )
    check_range("input_shape", input_shape, low=1)
    check_range("chains", chains, low=1)
    if not input_shape:
        raise ZooError("'input_shape' must name at least one dimension, e.g. 64 or 8,8,1.")

    return RBM(input_shape=input_shape, hidden_units=hidden_units, chains=chains, seed=seed, name="rbm")
