"""What the custom training steps (the GAN's, the RBM's) need from each Keras backend.

Keras documents one training step per backend ("Customizing what happens in fit()" with TensorFlow,
JAX and PyTorch): TensorFlow and PyTorch call a stateful `train_step(self, data)` that assigns
variables; JAX's trainer calls a stateless `train_step(self, state, data)` that receives every
variable's value in `state` and returns the new values. The models keep their maths in `keras.ops`
functions that take values and return values; this module holds the plumbing around them: which
backend runs, and how a JAX step reads and writes its state by variable.
"""

import keras


def backend():
    """The Keras backend of this process: "tensorflow", "jax" or "torch"."""
    return keras.backend.backend()


class OptimizerVariables:
    """Stands in for `model.optimizer` on JAX for a model that keeps its optimizers elsewhere.

    Keras' JAX trainer reads `model.optimizer.variables` to build the state it hands to
    `train_step(state, data)` and writes them back after the epoch. The GAN has one optimizer per
    network and the RBM none (its updates are explicit): this object lists their variables, so that
    they travel in `state` like any model's. TensorFlow and PyTorch never read it.

    Args:
        *optimizers: the optimizers whose variables the JAX state carries (none for the RBM).
    """

    built = True

    def __init__(self, *optimizers):
        self.optimizers = optimizers

    @property
    def variables(self):
        return [variable for optimizer in self.optimizers for variable in optimizer.variables]


class JaxState:
    """The values of a model's variables inside JAX's stateless `train_step` or `test_step`.

    Maps each variable (by identity) to its value in `state`, so that a step can read any
    variable's value (`state[variable]`), set new ones, and hand back the state tuple Keras expects.

    Args:
        model: the model whose `train_step` or `test_step` runs.
        state: the tuple Keras passed: (trainable, non-trainable, optimizer, metrics) values for a
            train step, (trainable, non-trainable, metrics) for a test step.
    """

    def __init__(self, model, state):
        self.model = model
        self.training = len(state) == 4
        self.groups = self._groups()
        self.values = {}
        for variables, values in zip(self.groups, state):
            for variable, value in zip(variables, values):
                self.values[id(variable)] = value

    def _groups(self):
        model = self.model
        groups = [model.trainable_variables, model.non_trainable_variables]
        if self.training:
            groups.append(model.optimizer.variables)
        groups.append(model.metrics_variables)
        return groups

    def __getitem__(self, variable):
        return self.values[id(variable)]

    def __setitem__(self, variable, value):
        self.values[id(variable)] = value

    def get(self, variables):
        """The values of a list of variables."""
        return [self[variable] for variable in variables]

    def set(self, variables, values):
        """Set the values of a list of variables."""
        for variable, value in zip(variables, values):
            self[variable] = value

    def update_metric(self, metric, *args, **kwargs):
        """`metric.update_state(*args, **kwargs)` on the values in this state."""
        self.set(metric.variables, metric.stateless_update_state(self.get(metric.variables), *args, **kwargs))

    def logs(self):
        """What a step returns: each of the model's metrics' result from the values in this state."""
        return {metric.name: metric.stateless_result(self.get(metric.variables)) for metric in self.model.metrics}

    def state(self):
        """The state tuple to return to Keras, in the order it was given."""
        return tuple(self.get(variables) for variables in self.groups)


def draw(seed_generator, state, draw_fn):
    """Run `draw_fn()` (which draws from `keras.random` with `seed_generator`) inside JAX's step.

    The seed generator's state is a variable: outside JAX's step `draw_fn` advances it in place;
    inside, its value is read from `state` and the advanced value is written back to `state`.

    Args:
        seed_generator: the `keras.random.SeedGenerator` that `draw_fn` draws with.
        state: the step's `JaxState`, or None on the stateful backends.
        draw_fn: a function of no argument that returns the noise.
    """
    if state is None:
        return draw_fn()
    with keras.StatelessScope(state_mapping=[(seed_generator.state, state[seed_generator.state])]) as scope:
        noise = draw_fn()
    state[seed_generator.state] = scope.get_current_value(seed_generator.state)
    return noise


def run_stateless(model, state, step):
    """Run a stateful `step()` (which assigns variables) as JAX's stateless step on `state`.

    Every variable in `state` is mapped to its value in a `keras.StatelessScope`, as Keras itself
    runs `stateless_call` and `optimizer.stateless_apply`: what `step` assigns is recorded in the
    scope instead of the variables, and returned as the new state.

    Args:
        model: the model whose step runs.
        state: the state tuple Keras passed to `train_step` or `test_step`.
        step: a function of no argument that runs the step and returns its logs.

    Returns:
        (logs, new state tuple), what JAX's `train_step` and `test_step` return.
    """
    state = JaxState(model, state)
    variables = [variable for group in state.groups for variable in group]
    with keras.StatelessScope(state_mapping=[(v, state[v]) for v in variables]) as scope:
        logs = step()
    for variable in variables:
        value = scope.get_current_value(variable)
        if value is not None:
            state[variable] = value
    return logs, state.state()
