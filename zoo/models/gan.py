"""Generative adversarial network (DCGAN) with an optional class-conditional variant.

Two networks compete: the generator maps a latent vector (and, when conditional, a class label) to an
image; the discriminator maps an image (and the label) to a real-vs-fake logit. `GAN` wraps both in
one `keras.Model` whose `train_step` updates them together with their own optimizers, so
`gan.fit(images)` (or `gan.fit((images, labels))` when conditional) trains it and `gan.save` keeps
both networks and both optimizers' states.

Architecture after Radford et al., "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks" (2015): strided transposed convolutions with batch normalization
and ReLU in the generator, strided convolutions with LeakyReLU in the discriminator, no pooling.
The conditional variant follows Mirza and Osindero, "Conditional Generative Adversarial Nets" (2014):
the label is embedded and concatenated to the latent vector and to the image.
"""

import copy
import dataclasses

import keras
from keras import ops

from zoo import compiling
from zoo.errors import ZooError
from zoo.models import steps
from zoo.registry import check_range, register

_INPUTS_DOC = "latent vectors (batch, latent_dim) floats; conditional: also labels (batch, 1) ints"


def _check_shape(image_shape, upsamplings, num_classes, latent_dim):
    check_range("latent_dim", latent_dim, low=1)
    check_range("num_classes", num_classes, low=0)
    check_range("upsamplings", upsamplings, low=0, high=5)
    if num_classes == 1:
        raise ZooError(
            "num_classes=1 makes no conditional model: use 0 (unconditional) or the number of classes (2 or more)."
        )
    if len(image_shape) != 3 or min(image_shape) < 1 or image_shape[-1] not in (1, 3):
        raise ZooError(
            f"image_shape must be (height, width, channels) with 1 or 3 channels. "
            f"Received: image_shape={tuple(image_shape)!r}"
        )
    height, width, _ = image_shape
    factor = 2**upsamplings
    if height % factor or width % factor:
        raise ZooError(
            f"image_shape {height}x{width} is not divisible by 2**upsamplings={factor}; resize the "
            f"images (`image_size`) or lower upsamplings. Received: image_shape={tuple(image_shape)!r}, "
            f"upsamplings={upsamplings}"
        )


# === Generator ===


def build_generator(image_shape=(8, 8, 1), latent_dim=32, num_classes=0, filters=64, upsamplings=2, name="generator"):
    """Return the (uncompiled) DCGAN generator: latent vector [, label] -> image in [0, 1].

    The latent vector is projected to a (height / 2**upsamplings, width / 2**upsamplings) map with
    `filters * 2**upsamplings` channels; each stride-2 transposed convolution doubles the size and
    halves the channels; a final convolution with a sigmoid gives the image.
    """
    image_shape = tuple(int(d) for d in image_shape)
    _check_shape(image_shape, upsamplings, num_classes, latent_dim)
    check_range("filters", filters, low=1)
    height, width, channels = image_shape
    factor = 2**upsamplings

    # === Inputs ===
    latent = keras.Input(shape=(latent_dim,), name="latent")
    inputs = [latent]
    x = latent
    if num_classes:
        label = keras.Input(shape=(1,), dtype="int32", name="label")
        inputs.append(label)
        embedded = keras.layers.Embedding(num_classes, latent_dim, name="label_embedding")(label)
        embedded = keras.layers.Flatten(name="label_flatten")(embedded)
        x = keras.layers.Concatenate(name="latent_and_label")([latent, embedded])

    # === Projection ===
    width0 = filters * factor
    x = keras.layers.Dense((height // factor) * (width // factor) * width0, use_bias=False, name="project")(x)
    x = keras.layers.Reshape((height // factor, width // factor, width0), name="project_reshape")(x)
    # Synchronized statistics: with several replicas each sees part of the batch, and per-replica
    # statistics would make the update depend on the number of devices. Keras offers it on
    # TensorFlow only (tf.distribute); the other backends run a step on the whole batch.
    synchronized = steps.backend() == "tensorflow"
    x = keras.layers.BatchNormalization(synchronized=synchronized, name="project_bn")(x)
    x = keras.layers.ReLU(name="project_relu")(x)

    # === Upsampling blocks ===
    for index in range(1, upsamplings + 1):
        x = keras.layers.Conv2DTranspose(
            filters * 2 ** (upsamplings - index),
            4,
            strides=2,
            padding="same",
            use_bias=False,
            name=f"block{index}_deconv",
        )(x)
        x = keras.layers.BatchNormalization(synchronized=synchronized, name=f"block{index}_bn")(x)
        x = keras.layers.ReLU(name=f"block{index}_relu")(x)

    # === Image ===
    images = keras.layers.Conv2D(channels, 3, padding="same", activation="sigmoid", dtype="float32", name="image")(x)
    return keras.Model(inputs if num_classes else latent, images, name=name)


# === Discriminator ===


def build_discriminator(
    image_shape=(8, 8, 1), num_classes=0, filters=64, downsamplings=2, dropout=0.3, name="discriminator"
):
    """Return the (uncompiled) DCGAN discriminator: image [, label] -> real-vs-fake logit.

    Each stride-2 convolution halves the size and doubles the channels (LeakyReLU 0.2, no batch
    normalization, so that the real and the fake halves of a step are judged independently).
    """
    image_shape = tuple(int(d) for d in image_shape)
    _check_shape(image_shape, downsamplings, num_classes, 1)
    check_range("filters", filters, low=1)
    check_range("dropout", dropout, low=0.0, high=1.0, high_open=True)
    height, width, _ = image_shape

    # === Inputs ===
    image = keras.Input(shape=image_shape, name="image")
    inputs = [image]
    x = image
    if num_classes:
        label = keras.Input(shape=(1,), dtype="int32", name="label")
        inputs.append(label)
        # The label becomes one extra image channel, so the first convolution sees both together.
        plane = keras.layers.Embedding(num_classes, height * width, name="label_embedding")(label)
        plane = keras.layers.Reshape((height, width, 1), name="label_plane")(plane)
        x = keras.layers.Concatenate(name="image_and_label")([image, plane])

    # === Downsampling blocks ===
    for index in range(1, downsamplings + 1):
        x = keras.layers.Conv2D(filters * 2 ** (index - 1), 4, strides=2, padding="same", name=f"block{index}_conv")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"block{index}_lrelu")(x)

    # === Head ===
    x = keras.layers.Flatten(name="flatten")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    logit = keras.layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(inputs if num_classes else image, logit, name=name)


def _adam(learning_rate, beta_1, name):
    # DCGAN's Adam: beta_1 = 0.5 damps the oscillation of the adversarial game.
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, name=name)


# === The adversarial model ===


@keras.saving.register_keras_serializable(package="zoo")
class GAN(keras.Model):
    """A generator and a discriminator trained against each other by `fit`.

    `call` (and so `predict`) maps latent vectors (and labels, when conditional) to images, so the
    saved model is a sampler. `fit` takes batches of images, or (images, labels) when conditional.

    Args:
        generator: a model latent [, label] -> image (see `build_generator`).
        discriminator: a model image [, label] -> logit (see `build_discriminator`).
        latent_dim: size of the latent vector.
        num_classes: number of classes of the conditional variant; 0 for unconditional.
        seed: seed of the latent noise drawn during training.
        ema_momentum: when above 0, `call` (and so `predict` and `generate`) uses an exponential
            moving average of the generator's weights, updated after each step with this momentum.
        **kwargs: passed to `keras.Model` (name, ...).
    """

    def __init__(self, generator, discriminator, latent_dim=32, num_classes=0, seed=0, ema_momentum=0.0, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        self.ema_momentum = float(ema_momentum)
        self.ema_trainable = []
        self.ema_non_trainable = []
        # The latent noise of training steps (`keras.random`); its state is saved with the model.
        self.noise_generator = keras.random.SeedGenerator(self.seed, name="latent_noise")
        # === Metrics ===
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.discriminator_loss_tracker = keras.metrics.Mean(name="discriminator_loss")
        self.generator_optimizer = None
        self.discriminator_optimizer = None
        self.label_smoothing = 0.0

    @property
    def image_shape(self):
        return tuple(int(d) for d in self.generator.output_shape[1:])

    @property
    def conditional(self):
        return self.num_classes > 0

    def build(self, input_shape):
        # Both networks are Functional models, built when they were created; building the composite
        # records the input shape (so that `.keras` loading and `sample_inputs` know it), creates
        # the averaged generator weights, and marks it built, which Keras needs before it can place
        # the step under a tf.distribute strategy.
        del input_shape
        if self.ema_momentum:
            # Every replica computes the same average from the same synchronized weights: the first
            # replica's value stands for all.
            def averages(variables, kind):
                copies = []
                for index, variable in enumerate(variables):
                    copy = self.add_weight(
                        shape=variable.shape,
                        initializer="zeros",
                        trainable=False,
                        name=f"ema_{kind}_{index}",
                        aggregation="only_first_replica",
                    )
                    # A copy of the value: on JAX an assigned array is shared, not copied, and the
                    # training step may not receive one buffer twice.
                    copy.assign(ops.copy(variable))
                    copies.append(copy)
                return copies

            self.ema_trainable = averages(self.generator.trainable_variables, "trainable")
            self.ema_non_trainable = averages(self.generator.non_trainable_variables, "non_trainable")

    def call(self, inputs, training=False):
        inputs = self._generator_inputs(inputs)
        if self.ema_momentum and not training:
            # Samples come from the exponential moving average of the generator's weights (Karras
            # et al. 2018; Yazici et al. 2019): it smooths the oscillation of the adversarial game.
            images, _ = self.generator.stateless_call(
                [ops.convert_to_tensor(v) for v in self.ema_trainable],
                [ops.convert_to_tensor(v) for v in self.ema_non_trainable],
                inputs,
                training=False,
            )
            return images
        return self.generator(inputs, training=training)

    def _generator_inputs(self, inputs):
        if isinstance(inputs, dict):
            latent, labels = inputs.get("latent"), inputs.get("label", inputs.get("labels"))
        elif isinstance(inputs, (list, tuple)):
            latent, labels = inputs[0], (inputs[1] if len(inputs) > 1 else None)
        else:
            latent, labels = inputs, None
        if not self.conditional:
            return latent
        if labels is None:
            raise ValueError("This GAN is conditional: call it on [latent, labels].")
        return [latent, ops.reshape(ops.cast(labels, "int32"), (-1, 1))]

    # === Compile ===
    def compile(self, generator_optimizer=None, discriminator_optimizer=None, label_smoothing=0.0, **kwargs):
        """Configure training: one optimizer per network.

        Args:
            generator_optimizer: optimizer (or its name or config) of the generator; default
                Adam(1e-4, beta_1=0.5).
            discriminator_optimizer: optimizer of the discriminator; default Adam(4e-4, beta_1=0.5).
            label_smoothing: the discriminator's target for real images is 1 - label_smoothing.
            **kwargs: passed to `keras.Model.compile` (run_eagerly, jit_compile, steps_per_execution).
        """
        for key in ("optimizer", "loss", "metrics"):
            if kwargs.get(key) is not None:
                raise ValueError(f"GAN.compile takes generator_optimizer and discriminator_optimizer, not {key}.")
            kwargs.pop(key, None)
        # No optimizer of its own: Keras would otherwise create an unused RMSprop that would be saved,
        # restored and reported as if it trained something.
        super().compile(optimizer=None, **kwargs)
        self.generator_optimizer = keras.optimizers.get(generator_optimizer or _adam(1e-4, 0.5, "generator_adam"))
        self.discriminator_optimizer = keras.optimizers.get(
            discriminator_optimizer or _adam(4e-4, 0.5, "discriminator_adam")
        )
        if self.generator_optimizer is self.discriminator_optimizer:
            raise ValueError("The generator and the discriminator need two distinct optimizer instances.")
        if self.dtype_policy.name == "mixed_float16":
            # What `Model.compile` does for its one optimizer: float16 gradients underflow unscaled.
            self.generator_optimizer, self.discriminator_optimizer = (
                optimizer
                if isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
                else keras.optimizers.LossScaleOptimizer(optimizer, name=f"{optimizer.name}_loss_scale")
                for optimizer in (self.generator_optimizer, self.discriminator_optimizer)
            )
        self.label_smoothing = float(label_smoothing)
        self._gan_compile_options = {
            k: kwargs[k] for k in ("run_eagerly", "jit_compile", "steps_per_execution") if k in kwargs
        }
        if steps.backend() == "jax":
            # JAX's trainer carries `model.optimizer.variables` through its stateless step.
            self.optimizer = steps.OptimizerVariables(self.generator_optimizer, self.discriminator_optimizer)
        # Optimizer variables are created now, inside the caller's strategy scope, rather than lazily
        # inside the first distributed step (where they would be placeholders of a replica graph).
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    def get_compile_config(self):
        if not self.compiled or self.generator_optimizer is None:
            return {}
        return {
            "generator_optimizer": keras.optimizers.serialize(self.generator_optimizer),
            "discriminator_optimizer": keras.optimizers.serialize(self.discriminator_optimizer),
            "label_smoothing": self.label_smoothing,
            **getattr(self, "_gan_compile_options", {}),
        }

    def compile_from_config(self, config):
        # Called by `keras.saving.load_model` before the weights are restored: the optimizers are
        # rebuilt here so that their saved states (moments, step counts) have variables to land in.
        if not config:
            return
        config = dict(config)
        for key in ("generator_optimizer", "discriminator_optimizer"):
            config[key] = keras.optimizers.deserialize(config[key])
        self.compile(**config)

    @property
    def metrics(self):
        return [self.generator_loss_tracker, self.discriminator_loss_tracker]

    # === Saving ===
    def _random_states(self):
        """The seed-generator states of the networks' layers (dropout): variables, not weights."""
        states = []
        for network in (self.generator, self.discriminator):
            weights = {id(w) for w in network.weights}
            states += [v for v in network.variables if id(v) not in weights]
        return states

    def save_own_variables(self, store):
        # Keras saves weights but not the layers' random states, so a reloaded model would draw
        # other dropout masks than the saved one: kept here, training resumes exactly.
        super().save_own_variables(store)
        for index, state in enumerate(self._random_states()):
            store[f"random_state_{index}"] = state
        store["latent_noise_state"] = self.noise_generator.state

    def load_own_variables(self, store):
        keys = list(store.keys())
        own = ("random_state_", "latent_noise_state")
        super().load_own_variables({key: store[key] for key in keys if not key.startswith(own)})
        if "latent_noise_state" in keys:
            self.noise_generator.state.assign(store["latent_noise_state"])
        states = self._random_states()
        saved = [key for key in keys if key.startswith("random_state_")]
        if len(saved) == len(states):
            for index, state in enumerate(states):
                state.assign(store[f"random_state_{index}"])

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras (3.15, TensorFlow backend) builds a model under a strategy from the first batch
        # averaged across replicas, which fails when that batch splits unevenly (5 rows on 2
        # replicas). Nothing here needs it: both networks and both optimizers are built already, and
        # there is no compiled loss or metric to build.
        return

    # === Training ===
    # One step per backend, as Keras documents each ("Customizing what happens in fit()"), around
    # the maths they share: `_step_losses` (the forward pass and both losses) and `_averaged` (the moving
    # average of the generator's weights). Given the same weights, batch and latent noise, the three
    # steps make the same update (tests/test_backends.py).
    def train_step(self, *args):
        """`fit`'s step: `train_step(data)` on TensorFlow and PyTorch, `train_step(state, data)` on JAX."""
        return getattr(self, f"_train_step_{steps.backend()}")(*args)

    def _batch(self, data, state=None):
        """(images, labels, latent noise, this replica's rows, global rows) of a batch.

        The noise of a step is drawn for the whole global batch from the model's seed generator and
        each replica takes its own rows: the update is the same on any number of devices, and a
        reloaded model (which keeps the generator's state) draws the noise the saved one would have.
        A batch may bring its own noise (`{"images": ..., "latent": ...}`): the steps of different
        backends are compared on the same noise that way, since each backend's generator differs.
        """
        images, labels, latent = _unpack(data)
        if self.conditional and labels is None:
            raise ValueError("This GAN is conditional: fit it on (images, labels).")
        images = ops.cast(images, "float32")
        local = ops.shape(images)[0]
        offset, total = _replica_rows(local)
        if latent is None:
            noise = steps.draw(
                self.noise_generator,
                state,
                lambda: keras.random.normal((total, self.latent_dim), seed=self.noise_generator),
            )
            latent = ops.slice(noise, (offset, 0), (local, self.latent_dim))
        if self.conditional:
            # Fakes carry the labels of the real batch: the class balance of the data, and the
            # discriminator compares like with like.
            labels = ops.reshape(ops.cast(labels, "int32"), (-1, 1))
        return images, labels, ops.cast(latent, "float32"), ops.cast(total, "float32")

    def _step_losses(self, generate, judge, images, labels, latent, count):
        """The forward pass and the losses of one step, for any backend.

        Args:
            generate: the generator as a function of its inputs (a stateless call on JAX).
            judge: the discriminator as a function of (images, labels) (likewise).
            images, labels, latent: the batch (labels None when unconditional) and its noise.
            count: rows of the global batch.

        Returns:
            (discriminator loss to differentiate, generator loss to differentiate, per-example
            discriminator losses, per-example generator losses).
        """
        fakes = generate([latent, labels] if self.conditional else latent)
        real_logits = ops.reshape(judge(images, labels), (-1,))
        fake_logits = ops.reshape(judge(fakes, labels), (-1,))
        return self._losses_from_logits(real_logits, fake_logits, fake_logits, count)

    def _losses_from_logits(self, real_logits, fake_logits, generator_fake_logits, count):
        real_loss, fake_loss, generator_loss = _adversarial_losses(
            real_logits, fake_logits, generator_fake_logits, self.label_smoothing
        )
        # Sums over this replica's rows divided by the global row count: the optimizers sum the
        # replicas' gradients, which then equal the gradient of the global mean.
        discriminator_scaled = (ops.sum(real_loss) + ops.sum(fake_loss)) / count
        generator_scaled = ops.sum(generator_loss) / count
        # Identity, except for a LossScaleOptimizer (mixed precision), whose apply unscales.
        return (
            self.discriminator_optimizer.scale_loss(discriminator_scaled),
            self.generator_optimizer.scale_loss(generator_scaled),
            real_loss + fake_loss,
            generator_loss,
        )

    def test_step(self, *args):
        """`evaluate`'s step: both losses on a batch, nothing updated; `test_step(state, data)` on JAX.

        The latent noise is drawn from the model's `seed` alone, so evaluating does not move the
        training noise and every evaluation of a model sees the same fakes.
        """
        if steps.backend() == "jax":
            state, data = args
            return steps.run_stateless(self, state, lambda: self._evaluation_step(data))
        return self._evaluation_step(*args)

    def _evaluation_step(self, data):
        images, labels, latent = _unpack(data)
        if self.conditional and labels is None:
            raise ValueError("This GAN is conditional: evaluate it on (images, labels).")
        images = ops.cast(images, "float32")
        if latent is None:
            latent = keras.random.normal((ops.shape(images)[0], self.latent_dim), seed=self.seed)
        if self.conditional:
            labels = ops.reshape(ops.cast(labels, "int32"), (-1, 1))
        fakes = self.generator([latent, labels] if self.conditional else latent, training=False)

        def judge(x):
            return ops.reshape(self.discriminator([x, labels] if self.conditional else x, training=False), (-1,))

        fake_logits = judge(fakes)
        real_loss, fake_loss, generator_loss = _adversarial_losses(
            judge(images), fake_logits, fake_logits, self.label_smoothing
        )
        self.generator_loss_tracker.update_state(generator_loss)
        self.discriminator_loss_tracker.update_state(real_loss + fake_loss)
        return {metric.name: metric.result() for metric in self.metrics}

    def _averaged(self, averages, values, step):
        """The moving averages of the generator's weights after the step numbered `step` (from 0)."""
        # Warm-up as in tf.train.ExponentialMovingAverage(num_updates): early averages forget the
        # random initial weights quickly.
        steps_done = ops.cast(step, "float32") + 1.0
        decay = ops.minimum(self.ema_momentum, (1.0 + steps_done) / (10.0 + steps_done))
        return [
            decay * average + (1.0 - decay) * ops.cast(value, average.dtype) for average, value in zip(averages, values)
        ]

    def _generator_state(self):
        return self.generator.trainable_variables + self.generator.non_trainable_variables

    def _judge(self, images, labels):
        return self.discriminator([images, labels] if self.conditional else images, training=True)

    def _train_step_tensorflow(self, data):
        # Two GradientTapes over one forward pass (simultaneous gradient descent, as TensorFlow's
        # DCGAN tutorial): a third cheaper than alternating updates, and it meets the benchmark.
        import tensorflow as tf

        images, labels, latent, count = self._batch(data)
        # Read before the optimizers count this step (graph order follows program order).
        step = ops.cast(self.discriminator_optimizer.iterations, "float32")
        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            discriminator_scaled, generator_scaled, discriminator_loss, generator_loss = self._step_losses(
                lambda inputs: self.generator(inputs, training=True), self._judge, images, labels, latent, count
            )
        generator_variables = self.generator.trainable_variables
        discriminator_variables = self.discriminator.trainable_variables
        generator_gradients = generator_tape.gradient(generator_scaled, generator_variables)
        discriminator_gradients = discriminator_tape.gradient(discriminator_scaled, discriminator_variables)
        self.generator_optimizer.apply_gradients(zip(generator_gradients, generator_variables))
        self.discriminator_optimizer.apply_gradients(zip(discriminator_gradients, discriminator_variables))
        return self._finish_stateful_step(step, discriminator_loss, generator_loss)

    def _train_step_torch(self, data):
        # PyTorch's autograd: one forward pass, then one backward pass per loss, each gradient read
        # from the variables' `.grad` after `zero_grad()` (the discriminator's gradients are copied
        # first: the generator's backward pass goes through the discriminator and adds to them).
        import torch

        images, labels, latent, count = self._batch(data)
        # A copy: PyTorch variables are updated in place.
        step = ops.cast(self.discriminator_optimizer.iterations, "float32")
        discriminator_scaled, generator_scaled, discriminator_loss, generator_loss = self._step_losses(
            lambda inputs: self.generator(inputs, training=True), self._judge, images, labels, latent, count
        )
        generator_variables = self.generator.trainable_variables
        discriminator_variables = self.discriminator.trainable_variables

        def gradients(loss, variables, retain_graph):
            self.zero_grad()
            loss.backward(retain_graph=retain_graph)
            return [
                torch.zeros_like(v.value) if v.value.grad is None else v.value.grad.detach().clone() for v in variables
            ]

        discriminator_gradients = gradients(discriminator_scaled, discriminator_variables, retain_graph=True)
        generator_gradients = gradients(generator_scaled, generator_variables, retain_graph=False)
        self.zero_grad()
        with torch.no_grad():
            self.generator_optimizer.apply(generator_gradients, generator_variables)
            self.discriminator_optimizer.apply(discriminator_gradients, discriminator_variables)
            return self._finish_stateful_step(step, discriminator_loss.detach(), generator_loss.detach())

    def _finish_stateful_step(self, step, discriminator_loss, generator_loss):
        if self.ema_momentum:
            averages = self.ema_trainable + self.ema_non_trainable
            for average, value in zip(averages, self._averaged(averages, self._generator_state(), step)):
                average.assign(value)
        # Trackers take the per-example (unscaled) losses: their totals and counts are summed across
        # replicas, so the reported figure is the global mean, not that mean over the replica count.
        self.generator_loss_tracker.update_state(generator_loss)
        self.discriminator_loss_tracker.update_state(discriminator_loss)
        return {metric.name: metric.result() for metric in self.metrics}

    def _train_step_jax(self, state, data):
        # JAX's stateless step: every variable's value comes in `state` and the new values go back
        # out. `stateless_call` runs each network on given weights; `jax.value_and_grad` takes the
        # gradients of one objective, the sum of the two losses with each network's weights held
        # constant (`stop_gradient`) in the other network's loss, which gives each network the
        # gradient of its own loss only, as the two tapes do.
        import jax

        state = steps.JaxState(self, state)
        images, labels, latent, count = self._batch(data, state)
        generator, discriminator = self.generator, self.discriminator
        step = state[self.discriminator_optimizer.iterations]
        generator_non_trainable = state.get(generator.non_trainable_variables)
        discriminator_non_trainable = state.get(discriminator.non_trainable_variables)
        optimizer_mapping = [(v, state[v]) for v in self.optimizer.variables]

        def objective(generator_trainable, discriminator_trainable):
            fakes, new_generator = generator.stateless_call(
                generator_trainable,
                generator_non_trainable,
                [latent, labels] if self.conditional else latent,
                training=True,
            )

            def judge(weights, non_trainable, x):
                logits, non_trainable = discriminator.stateless_call(
                    weights, non_trainable, [x, labels] if self.conditional else x, training=True
                )
                return ops.reshape(logits, (-1,)), non_trainable

            real_logits, after_real = judge(discriminator_trainable, discriminator_non_trainable, images)
            fake_logits, new_discriminator = judge(discriminator_trainable, after_real, ops.stop_gradient(fakes))
            # The same pass (same dropout masks: same seed state) for the generator's loss.
            generator_fake_logits, _ = judge([ops.stop_gradient(w) for w in discriminator_trainable], after_real, fakes)
            with keras.StatelessScope(state_mapping=optimizer_mapping):
                discriminator_scaled, generator_scaled, discriminator_loss, generator_loss = self._losses_from_logits(
                    real_logits, fake_logits, generator_fake_logits, count
                )
            return discriminator_scaled + generator_scaled, (
                new_generator,
                new_discriminator,
                discriminator_loss,
                generator_loss,
            )

        generator_trainable = state.get(generator.trainable_variables)
        discriminator_trainable = state.get(discriminator.trainable_variables)
        (_, aux), (generator_gradients, discriminator_gradients) = jax.value_and_grad(
            objective, argnums=(0, 1), has_aux=True
        )(generator_trainable, discriminator_trainable)
        new_generator, new_discriminator, discriminator_loss, generator_loss = aux
        state.set(generator.non_trainable_variables, new_generator)
        state.set(discriminator.non_trainable_variables, new_discriminator)
        for optimizer, network, gradients, weights in (
            (self.generator_optimizer, generator, generator_gradients, generator_trainable),
            (self.discriminator_optimizer, discriminator, discriminator_gradients, discriminator_trainable),
        ):
            new_weights, new_optimizer = optimizer.stateless_apply(state.get(optimizer.variables), gradients, weights)
            state.set(network.trainable_variables, new_weights)
            state.set(optimizer.variables, new_optimizer)
        if self.ema_momentum:
            averages = self.ema_trainable + self.ema_non_trainable
            state.set(averages, self._averaged(state.get(averages), state.get(self._generator_state()), step))
        state.update_metric(self.generator_loss_tracker, generator_loss)
        state.update_metric(self.discriminator_loss_tracker, discriminator_loss)
        return state.logs(), state.state()

    # === Sampling ===
    def generate(self, count, labels=None, seed=None, batch_size=256):
        """Return `count` generated images as a numpy array (count, height, width, channels).

        Args:
            count: number of images.
            labels: conditional only: one int for all images, or a sequence of `count` ints;
                None draws the classes in turn (0, 1, 2, ...).
            seed: seed of the latent vectors (None: random).
            batch_size: images generated per forward pass.

        Raises:
            ZooError: for a count below 1, or a label the generator cannot take.
        """
        import numpy as np

        if count < 1:
            raise ZooError(f"The number of images must be at least 1. Received: {count}")
        latent = np.random.default_rng(seed).standard_normal((count, self.latent_dim)).astype("float32")
        if not self.conditional:
            if labels is not None:
                raise ZooError(
                    "This generator is unconditional (trained without labels): drop the label, "
                    "or train a conditional one (`conditional=True`)."
                )
            inputs = latent
        else:
            labels = (
                np.arange(count) % self.num_classes
                if labels is None
                else np.broadcast_to(np.asarray(labels, dtype="int64"), (count,))
            )
            bad = labels[(labels < 0) | (labels >= self.num_classes)]
            if len(bad):
                raise ZooError(
                    f"Label {int(bad[0])} is out of range: this generator knows labels 0 to {self.num_classes - 1}."
                )
            inputs = [latent, labels.astype("int32").reshape(-1, 1)]
        # Direct calls rather than `predict`: callers ask for varying counts, and each new batch
        # shape would retrace predict's compiled function.
        chunks = []
        for start in range(0, count, batch_size):
            chunk = keras.tree.map_structure(lambda a, start=start: a[start : start + batch_size], inputs)
            chunks.append(ops.convert_to_numpy(self(chunk, training=False)))
        return np.concatenate(chunks)

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "latent_dim": self.latent_dim,
                "num_classes": self.num_classes,
                "seed": self.seed,
                "ema_momentum": self.ema_momentum,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        # Deserializing a Functional model consumes its config dict: work on a copy.
        config = copy.deepcopy(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)


def _unpack(data):
    """(images, labels or None, latent or None) from a batch of images, (images,), (images, labels)
    or a dict with "images" and optionally "labels" and "latent" (the step's noise)."""
    if isinstance(data, (list, tuple)):
        x, y = data[0], (data[1] if len(data) > 1 else None)
    else:
        x, y = data, None
    if isinstance(x, dict):
        return x["images"], x.get("labels", y), x.get("latent")
    return x, y, None


def _adversarial_losses(real_logits, fake_logits, generator_fake_logits, label_smoothing):
    """Per-example losses: the discriminator's on real and on fake images, the generator's.

    `generator_fake_logits` are the fakes' logits as the generator's loss sees them (the same
    values as `fake_logits`; on JAX a pass with the discriminator's weights held constant).
    """
    real_loss = _bce(ops.full_like(real_logits, 1.0 - label_smoothing), real_logits)
    fake_loss = _bce(ops.zeros_like(fake_logits), fake_logits)
    # Non-saturating generator loss: -log D(G(z)).
    generator_loss = _bce(ops.ones_like(generator_fake_logits), generator_fake_logits)
    return real_loss, fake_loss, generator_loss


def _bce(target, logits):
    """Per-example binary cross-entropy on logits (shape (batch,))."""
    return ops.binary_crossentropy(target, logits, from_logits=True)


def _replica_rows(local):
    """Return (offset of this replica's rows in the global batch, global row count).

    TensorFlow-specific on purpose: under tf.distribute each replica sees its share of the batch,
    and Keras has no backend-neutral collective. Other backends run the whole batch in one step.
    """
    if steps.backend() != "tensorflow":
        return 0, local
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 0, local
    replicas = context.num_replicas_in_sync
    # Replicas may hold different row counts (the last batch of an epoch): share them all.
    counts = context.all_reduce(
        "sum", ops.one_hot(context.replica_id_in_sync_group, replicas, dtype="int32") * ops.cast(local, "int32")
    )
    before = ops.cast(ops.arange(replicas) < context.replica_id_in_sync_group, "int32")
    return ops.sum(counts * before), ops.sum(counts)


# === Registered builders ===


@dataclasses.dataclass(frozen=True)
class DecoderTraining(compiling.Adam):
    """Adam (beta_1 0.5) on mean squared error: a decoder from given codes to images."""

    learning_rate: float = 2e-4

    def compile(self, model, architecture):
        model.compile(optimizer=_adam(self.learning_rate, 0.5, "adam"), loss="mse")


@dataclasses.dataclass(frozen=True)
class CriticTraining(compiling.Adam):
    """Adam (beta_1 0.5) on binary cross-entropy from logits, accuracy at logit 0: a real-vs-fake
    (or any binary) image critic."""

    learning_rate: float = 2e-4

    def compile(self, model, architecture):
        model.compile(
            optimizer=_adam(self.learning_rate, 0.5, "adam"),
            loss=keras.losses.BinaryCrossentropy(from_logits=True),
            weighted_metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)],
        )


@dataclasses.dataclass(frozen=True)
class AdversarialTraining(compiling.Training):
    """One Adam per network on the non-saturating GAN losses (binary cross-entropy from logits),
    real targets smoothed to 1 - label_smoothing.

    Args:
        generator_learning_rate: Adam learning rate of the generator.
        discriminator_learning_rate: Adam learning rate of the discriminator; four times the
            generator's, the two time-scale rule of Heusel et al. (2017): on the digits it gave the
            lowest Frechet distance and the most varied samples of the settings tried.
        beta_1: Adam beta_1 of both optimizers (DCGAN: 0.5).
        label_smoothing: the discriminator's target for real images is 1 - label_smoothing.
    """

    generator_learning_rate: float = 1e-4
    discriminator_learning_rate: float = 4e-4
    beta_1: float = 0.5
    label_smoothing: float = 0.1

    def check(self):
        check_range("generator_learning_rate", self.generator_learning_rate, low=0.0, low_open=True)
        check_range("discriminator_learning_rate", self.discriminator_learning_rate, low=0.0, low_open=True)
        check_range("beta_1", self.beta_1, low=0.0, high=1.0, high_open=True)
        check_range("label_smoothing", self.label_smoothing, low=0.0, high=0.5)

    def compile(self, model, architecture):
        model.compile(
            generator_optimizer=_adam(self.generator_learning_rate, self.beta_1, "generator_adam"),
            discriminator_optimizer=_adam(self.discriminator_learning_rate, self.beta_1, "discriminator_adam"),
            label_smoothing=self.label_smoothing,
        )


@register(
    "generator",
    technique="gan",
    tasks=("generation",),
    summary="DCGAN generator: latent vector (and class label) to image, transposed convolutions.",
    when_to_use="Alone only as a decoder from given codes; train it adversarially through `gan`.",
    inputs=_INPUTS_DOC,
    outputs="images (batch, height, width, channels) in [0, 1]",
    recipe="gan",
    part_of="gan",
    training=DecoderTraining,
    exports="tf_saved_model, onnx, litert.",
    search_space={"learning_rate": "log:5e-5..1e-3", "filters": "choice:16|32|64"},
)
def generator(
    *,
    image_shape: tuple[int, ...] = (8, 8, 1),
    latent_dim: int = 32,
    num_classes: int = 0,
    filters: int = 32,
    upsamplings: int = 2,
):
    """Build the DCGAN generator (`zoo.get` compiles it alone as a decoder, with `DecoderTraining`).

    Args:
        image_shape: (height, width, channels) of the images, channels 1 or 3.
        latent_dim: size of the latent vector.
        num_classes: classes of the conditional variant (a label input); 0 for unconditional.
        filters: channels of the last upsampling block (doubled at each earlier block).
        upsamplings: stride-2 transposed convolutions; height and width must divide by 2**upsamplings.

    Returns:
        A Functional `keras.Model` named `generator`.
    """
    return build_generator(image_shape, latent_dim, num_classes, filters, upsamplings)


@register(
    "discriminator",
    technique="gan",
    tasks=("generation", "binary"),
    summary="DCGAN discriminator: image (and class label) to a real-vs-fake logit, strided convolutions.",
    when_to_use="Alone as a real-vs-fake (or any binary) image critic; adversarially through `gan`.",
    inputs="images (batch, height, width, channels) in [0, 1]; conditional: also labels (batch, 1) ints",
    outputs="logit (batch, 1): positive means real",
    recipe="gan",
    part_of="gan",
    training=CriticTraining,
    exports="tf_saved_model, onnx, litert.",
    search_space={"learning_rate": "log:5e-5..1e-3", "filters": "choice:16|32|64", "dropout": "0..0.5"},
)
def discriminator(
    *,
    image_shape: tuple[int, ...] = (8, 8, 1),
    num_classes: int = 0,
    filters: int = 32,
    downsamplings: int = 2,
    dropout: float = 0.3,
):
    """Build the DCGAN discriminator (`zoo.get` compiles it alone as a critic, with `CriticTraining`).

    Args:
        image_shape: (height, width, channels) of the images, channels 1 or 3.
        num_classes: classes of the conditional variant (a label input); 0 for unconditional.
        filters: channels of the first convolution (doubled at each later block).
        downsamplings: stride-2 convolutions; height and width must divide by 2**downsamplings.
        dropout: dropout rate before the logit.

    Returns:
        A Functional `keras.Model` named `discriminator`.
    """
    return build_discriminator(image_shape, num_classes, filters, downsamplings, dropout)


@register(
    "gan",
    technique="gan",
    tasks=("generation",),
    summary="DCGAN: generator and discriminator trained adversarially by one `fit`, conditional optional.",
    when_to_use="To generate new images like a training set (conditional: of a chosen class).",
    inputs=f"fit: images (batch, height, width, channels) in [0, 1], or (images, labels) when "
    f"conditional; predict: {_INPUTS_DOC}",
    outputs="predict: generated images (batch, height, width, channels) in [0, 1]",
    recipe="gan",
    training=AdversarialTraining,
    exports="tf_saved_model, onnx, litert: its generator (averaged weights when kept), labels and latent vectors in.",
    search_space={
        "generator_learning_rate": "log:5e-5..5e-4",
        "discriminator_learning_rate": "log:1e-4..1e-3",
        "dropout": "0..0.5",
        "label_smoothing": "0..0.2",
    },
)
def gan(
    *,
    image_shape: tuple[int, ...] = (8, 8, 1),
    latent_dim: int = 32,
    num_classes: int = 0,
    generator_filters: int = 32,
    discriminator_filters: int = 32,
    upsamplings: int = 2,
    dropout: float = 0.3,
    ema_momentum: float = 0.999,
    seed: int = 0,
):
    """Build the adversarial pair (`zoo.get` compiles it with `AdversarialTraining`).

    Args:
        image_shape: (height, width, channels) of the images, channels 1 or 3.
        latent_dim: size of the latent vector.
        num_classes: classes of the conditional variant (labels in both networks); 0 for unconditional.
        generator_filters: channels of the generator's last upsampling block.
        discriminator_filters: channels of the discriminator's first convolution.
        upsamplings: stride-2 (transposed) convolutions in each network; the image height and width
            must divide by 2**upsamplings.
        dropout: dropout rate before the discriminator's logit.
        ema_momentum: samples come from an exponential moving average of the generator's weights
            with this momentum (0: from the trained weights themselves).
        seed: seed of the latent noise drawn during training.

    Returns:
        A built `GAN`.
    """
    check_range("ema_momentum", ema_momentum, low=0.0, high=1.0, high_open=True)
    model = GAN(
        build_generator(image_shape, latent_dim, num_classes, generator_filters, upsamplings),
        build_discriminator(image_shape, num_classes, discriminator_filters, upsamplings, dropout),
        latent_dim=latent_dim,
        num_classes=num_classes,
        seed=seed,
        ema_momentum=ema_momentum,
        name="gan",
    )
    model.build([(None, latent_dim), (None, 1)] if num_classes else (None, latent_dim))
    return model
