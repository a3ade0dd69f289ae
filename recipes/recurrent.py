"""Recurrent networks (simple RNN, LSTM, GRU) on real sequences, in the three configurations.

Technique: recurrent networks trained by backpropagation through time; `zoo train rnn`,
`zoo train lstm` and `zoo train gru` share this recipe and differ only in the cell.
Datasets, offline by default:
- `--mode many_to_one` (default): scikit-learn's 8x8 digit scans read row by row (8 steps of 8
  pixels); `--dataset mnist` (28 rows of 28) and `--dataset imdb_reviews` (sentiment, words
  vectorized as `TextVectorization` does, in NumPy) when tensorflow-datasets has them on disk; a CSV of
  texts (`--data reviews.csv --text-column text --target label`) or an `.npz` of numeric
  sequences (`--data series.npz`, `--pad` for sequences of different lengths).
- `--mode many_to_many`: `digit_video`, videos of digit scans with one label per frame (accuracy
  per frame); forecasting: `--dataset sunspots` (yearly sunspot numbers from statsmodels) or a CSV
  series of yours (`--data series.csv --target COLUMN [--time-column COL] [--features COL,...]`),
  the next `--horizon` values from a `--window` of past ones, split by time, scaled inside the
  model (five networks averaged, each beside a linear autoregression), judged per horizon step
  against persistence, seasonal naive (`--season`) and a ridge autoregression; `--dataset goog`,
  the Google share price, a near random walk no model beats.
- `--mode one_to_many`: `digit_captions`, a digit scan in, its English name out character by
  character, decoded greedily (exact-match rate of the decoded captions).
What it shows: the same cells in the three configurations, masking of padded steps, teacher forcing
against greedy decoding, and examples of predicted sequences logged next to the metrics.

    zoo train lstm
    zoo train gru --mode many_to_many
    zoo train lstm --mode many_to_many --dataset sunspots --window 12 --horizon 3
    zoo train gru --mode many_to_many --data series.csv --target sales --time-column month --season 12
    zoo train gru --mode many_to_many --data shops.csv --series-column shop --target sales --time-column week
    zoo train rnn --mode one_to_many
"""

import dataclasses
import os
import typing

import numpy as np

from zoo import tracking, training
from zoo.datasets import sequences, series
from zoo.errors import ZooError

# Which configuration each named dataset trains, and each configuration's offline default.
DATASET_MODES = {
    "digits": "many_to_one",
    "mnist": "many_to_one",
    "imdb_reviews": "many_to_one",
    "digit_video": "many_to_many",
    "goog": "many_to_many",
    "sunspots": "many_to_many",
    "digit_captions": "one_to_many",
}
# Steps a forecast window reads unless --window says otherwise: about one solar cycle of years.
DEFAULT_WINDOW = 12
# With a season, at least two seasons and 24 steps: on monthly CO2 a window of 12 left the GRU at MAE
# 0.66 against ARIMA's 0.23, one of 24 at 0.246; on quarterly unemployment 0.203 -> 0.178 (ETS 0.178).
SEASONAL_WINDOW = 24
# Forecasts average this many networks inside the one model (N-BEATS averages many), each from its own
# initial weights and trained on its own error: on El Nino one GRU gave MAE 0.4317, five 0.4232, for
# about 3x the time.
FORECAST_MEMBERS = 5
DEFAULT_DATASETS = {"many_to_one": "digits", "many_to_many": "digit_video", "one_to_many": "digit_captions"}


@dataclasses.dataclass
class RecurrentConfig(training.RecipeConfig):
    """Options of the recurrent recipes (rnn, lstm, gru).

    Args:
        mode: many_to_one (classify a sequence), many_to_many (one output per step) or one_to_many
            (caption an image).
        dataset: auto (the mode's offline default: digits, digit_video, digit_captions), digits, mnist,
            imdb_reviews, digit_video, sunspots, goog or digit_captions.
        data: your own data instead of --dataset: a .csv of texts and labels (many_to_one), a .csv
            series to forecast (many_to_many), or an .npz of numeric sequences (arrays x and y, plus
            lengths when they differ).
        text_column: the text column of a --data CSV.
        target: the label column of a --data CSV of texts, or the numeric column to forecast.
        time_column: forecast CSV: the column that orders the rows (numbers or dates, evenly
            spaced, no duplicates); none: the rows in file order.
        features: forecast CSV: comma-separated numeric columns read beside the target (covariates).
        series_column: forecast CSV of several series in long format: the column naming each row's
            series. One global network trains on the windows of every series, each series split by
            time on its own, as one series is; baselines and peers are fitted per series, and the test
            errors are logged per series and pooled over every test window.
        season: forecasts: season length in steps for the seasonal-naive baseline, the seasonal
            transform and the statistical peers' season (0: none).
        transform: forecasts: what the network learns on. none: the raw levels (standardized by the
            training rows); diff: the target's changes, forecasting the residual over persistence;
            seasonal: the residual over the seasonal naive (needs --season); auto: the one under
            which a ridge autoregression forecasts the validation span best. The model inverts it:
            raw values in, raw forecasts out.
        interval: forecasts: coverage of the conformal prediction interval around each forecast,
            per horizon step, from the validation residuals and the test residuals already observed
            when the forecast is made (0: none).
        backtest: forecasts: K rolling forecast origins over the test span (expanding history, no
            refitting): the error of every model per origin and per step ahead, logged and drawn
            (0: none).
        pad: pad --data sequences of different lengths at the end and mask the padded steps.
        pad_value: value of the padded steps; real steps must never hold it in every feature.
        window: forecasts: steps per input window (default 12; with a season, two seasons and at
            least 24; goog 32).
        horizon: forecasts: how many steps ahead to forecast (sunspots and CSVs: every step up to it).
        frames: digit_video: frames per video.
        videos: digit_video: training videos (validation and test get a quarter of that each).
        max_tokens: text: vocabulary size, padding and out-of-vocabulary ids included.
        sequence_length: text: tokens kept per text (shorter texts are padded and masked).
        data_dir: tensorflow-datasets data directory for mnist and imdb_reviews.
        download: download a tensorflow-datasets dataset that is not on disk when its servers answer
            (--no-download forbids it).
        examples: how many predicted sequences to log as examples.
    """

    epochs: int = 60
    patience: int = 8
    mode: typing.Literal[sequences.MODES] = "many_to_one"
    dataset: typing.Literal[
        "auto", "digits", "mnist", "imdb_reviews", "digit_video", "sunspots", "goog", "digit_captions"
    ] = "auto"
    data: str | None = None
    text_column: str = "text"
    target: str = "label"
    time_column: str | None = None
    features: str | None = None
    series_column: str | None = None
    season: int = 0
    transform: typing.Literal["auto", "none", "diff", "seasonal"] = "auto"
    interval: float = 0.8
    backtest: int = 0
    pad: bool = False
    pad_value: float = sequences.PAD_VALUE
    window: int | None = None
    horizon: int = 1
    frames: int = 16
    videos: int = 2000
    max_tokens: int = 20000
    sequence_length: int = 200
    data_dir: str | None = None
    download: bool = True
    examples: int = 16


@dataclasses.dataclass
class TestOutputs:
    """What the evaluation computed on the test split, for the artifacts (None where not computed).

    Attributes:
        decoded: the captions greedy decoding wrote (one-to-many).
        predicted: the model's predictions on the test inputs (every other mode).
        judged: a CSV series' forecasts, baselines and per-step metrics (`_judge_forecasts`).
        forecast: a price series' forecast against the naive one (`_price_forecast`).
    """

    decoded: list[str] | None = None
    predicted: np.ndarray | None = None
    judged: dict[str, typing.Any] | None = None
    forecast: dict[str, typing.Any] | None = None


class RecurrentRecipe(training.Recipe):
    """The recipe shared by the three cells; a subclass only names its cell."""

    technique = "rnn"
    Config = RecurrentConfig

    # === Data ===
    def check_data(self, config):
        if config.data:
            # Reading a user's CSV or .npz needs NumPy and pandas only: a bad file fails before TensorFlow loads.
            load_sequences(config)

    def load_data(self, config):
        import mlflow

        seq = load_sequences(config)
        datasets = {}
        for split, x, y in (
            ("train", seq.x_train, seq.y_train),
            ("validation", seq.x_val, seq.y_val),
            ("test", seq.x_test, seq.y_test),
        ):
            # tf.data on TensorFlow, NumPy batches on JAX and PyTorch (no TensorFlow import).
            datasets[split] = training.from_arrays(_model_inputs(x), y)
        example_inputs = _decoder_inputs(seq.x_test)[:5] if seq.mode == "one_to_many" else seq.x_test[:5]
        spec = seq.spec() | {"dataset": seq.name}
        mlflow_datasets = [
            (
                mlflow.data.from_numpy(
                    _model_inputs(x), targets=y, source=tracking.dataset_source(seq.source), name=f"{seq.name}-{split}"
                ),
                context,
            )
            for split, x, y, context in (
                ("train", seq.x_train, seq.y_train, "training"),
                ("validation", seq.x_val, seq.y_val, "validation"),
                ("test", seq.x_test, seq.y_test, "testing"),
            )
        ]
        return training.Data(
            train=datasets["train"],
            validation=datasets["validation"],
            test=datasets["test"],
            num_train=len(seq.y_train),
            example_inputs=example_inputs,
            spec=spec,
            mlflow_datasets=mlflow_datasets,
            loaded=seq,
        )

    def ranking_metric(self, data=None):
        # Which test metric ranks runs depends on the data: captions, a regression, or classes.
        if data is None:
            return self.main_metric
        seq = data.loaded
        if seq.mode == "one_to_many":
            return "test_exact_match"
        return "test_mae" if seq.task == "regression" else "test_accuracy"

    def baseline(self, model, data, config, evaluation, prepared=None):
        from zoo.training import baselines

        hint = self.baseline_hint
        if "scaling" in data.loaded.extras:
            hint = "another --window (a season or two), more --epochs or a larger --patience"
        return baselines.default(data, evaluation.metrics, self.ranking_metric(data), hint)

    # === Model ===
    def check_overrides(self, config, data, overrides):
        seq = data.loaded
        if seq.name.endswith("_forecast") and overrides.get("bidirectional"):
            # Its many-to-many targets are the window's later values: a backward pass reads them.
            raise ZooError(
                f"`bidirectional=true` cannot forecast {seq.name}: the backward pass would "
                "read the values it predicts; drop it (forecasts run forward only)."
            )

    def model_overrides(self, config, data):
        seq = data.loaded
        overrides = {"mode": seq.mode, "input_shape": seq.input_shape, "task": seq.task, "num_outputs": seq.num_outputs}
        if seq.mode == "one_to_many":
            overrides["output_steps"] = int(seq.y_train.shape[1])
        elif seq.vocabulary is not None:
            overrides["vocabulary_size"] = len(seq.vocabulary)
        if seq.mask_value is not None:
            overrides["mask_value"] = seq.mask_value
        if seq.name.endswith("_forecast"):
            overrides["bidirectional"] = False
        if "scaling" in seq.extras:
            # Training statistics inside the model: it takes raw values and returns raw forecasts.
            transform = seq.extras.get("transform")
            statistics = transform["statistics"] if transform else seq.extras["scaling"]
            overrides |= {key: tuple(values) for key, values in statistics.items()}
            if transform and transform["name"] != "none":
                overrides["target_transform"] = transform["name"]
                if transform["name"] == "seasonal":
                    overrides["reference_season"] = seq.extras["season"]
            # A few hundred rows and early stopping: dropout only slowed learning. On sunspots 3 years
            # ahead it left the best cell's MAE at 19.0-20.6 over 3 seeds (ridge AR 19.1); none: 18.6-18.9.
            overrides["dropout"] = 0.0
            # A linear autoregression on the whole window beside each network (LSTNet's highway),
            # starting at zero: the GRU on inflation 2.177 -> 2.07, El Nino 0.4317 -> 0.42, Nile 100.3
            # -> 99.8. Initialized at random (Glorot) it left Nile at 168.6.
            overrides["linear_lags"] = int(seq.input_shape[0])
            overrides["members"] = FORECAST_MEMBERS
        if seq.name == "digit_video":
            # Each frame is an image: a per-frame encoder before the recurrence, as in CNN-LSTMs. Two
            # Dense layers: one left per-frame accuracy at 0.964-0.978 over seeds, short of 0.97.
            overrides["step_units"] = (128, 128)
        return overrides

    # === Evaluate ===
    def evaluate(self, model, data, config, prepared=None):
        from zoo.models import recurrent

        seq = data.loaded
        metrics = super().evaluate(model, data, config).metrics
        outputs = TestOutputs()
        if seq.mode == "one_to_many":
            tokens = recurrent.greedy_decode(model, _decoder_inputs(seq.x_test))
            decoded = outputs.decoded = sequences.decode_tokens(tokens, seq.vocabulary)
            metrics["test_exact_match"] = float(np.mean([d == t for d, t in zip(decoded, seq.extras["captions"])]))
        elif "scaling" in seq.extras:
            predicted = outputs.predicted = np.asarray(model.predict(seq.x_test, batch_size=256, verbose=0))
            validation = np.asarray(model.predict(seq.x_val, batch_size=256, verbose=0))
            if "members" in seq.extras:
                judged = outputs.judged = _judge_panel(seq, predicted, validation, config.interval)
            else:
                judged = outputs.judged = _judge_forecasts(seq, predicted, validation, config.interval)
            metrics |= judged["metrics"]
            # log_model reads the interval's half widths from the data (it is not handed the evaluation).
            seq.extras["interval"] = judged["interval"]
        else:
            predicted = outputs.predicted = np.asarray(model.predict(seq.x_test, batch_size=256, verbose=0))
            if "test_last_days" in seq.extras:
                forecast = outputs.forecast = _price_forecast(seq, predicted)
                metrics["test_naive_mae"] = seq.extras["naive_mae"]
                metrics["test_price_mae"] = float(np.mean(np.abs(forecast["forecast"] - forecast["actual"])))
                metrics["test_naive_price_mae"] = float(np.mean(np.abs(forecast["naive"] - forecast["actual"])))
        return training.Evaluation(metrics, outputs)

    # === Log ===
    def log_artifacts(self, model, data, config, evaluation, prepared=None):
        seq, outputs = data.loaded, evaluation.outputs
        count = max(0, config.examples)
        if seq.mode == "one_to_many":
            _log_captions(seq, outputs.decoded, count)
        elif outputs.judged is not None and "members" in seq.extras:
            _log_panel_forecast(seq, outputs.judged, config.output)
        elif outputs.judged is not None:
            _log_series_forecast(seq, outputs.predicted, outputs.judged, count, config.output)
            if config.backtest:
                _log_backtest(seq, outputs.judged, config.backtest)
        elif seq.task == "regression" and "test_last_days" in seq.extras:
            _log_forecast(seq, outputs.predicted, outputs.forecast, count)
        elif seq.mode == "many_to_many":
            _log_labelled_steps(seq, outputs.predicted, count)
        else:
            _log_classified(seq, outputs.predicted, count)
        if seq.vocabulary is not None and seq.mode != "one_to_many":
            # The model takes token ids: the vocabulary (id -> word) turns texts into them again.
            import mlflow

            mlflow.log_dict(
                {"vocabulary": list(seq.vocabulary), "sequence_length": seq.input_shape[0]}, "vocabulary.json"
            )

    def log_model(self, model, data):
        from zoo import serving

        seq = data.loaded
        if seq.mode == "one_to_many":
            # What a person wants from a captioner is the caption: log the greedy decoder, served as
            # images in and caption strings out, with the vocabulary beside it; `--output` keeps the
            # trained model.
            import mlflow

            from zoo.models import recurrent

            mlflow.log_dict(
                {"vocabulary": seq.vocabulary, "pad": sequences.PAD, "start": sequences.START, "end": sequences.END},
                "vocabulary.json",
            )
            adapter = serving.Caption(vocabulary=list(seq.vocabulary))
            return tracking.log_model(recurrent.greedy_decoder(model), data.example_inputs, adapter=adapter)
        if seq.vocabulary is not None:
            # Served on raw texts: the adapter vectorizes them with the training vocabulary.
            import pandas as pd

            adapter = serving.Text(vocabulary=list(seq.vocabulary), sequence_length=int(seq.input_shape[0]))
            texts = pd.DataFrame({"text": list(seq.extras["texts_test"][:5])})
            return tracking.log_model(
                model, texts, metadata={"class_names": [str(c) for c in seq.class_names]}, adapter=adapter
            )
        if "scaling" in seq.extras:
            # `zoo predict RUN series.csv` reads which columns to window from here; the served model
            # answers each window with its forecasts and interval bounds.
            info = _forecast_info(seq)
            adapter = serving.Forecast(interval=info.get("interval"))
            return tracking.log_model(model, data.example_inputs, metadata={"forecast": info}, adapter=adapter)
        # The served answer names the classes (none for a regression: `value` columns).
        metadata = {"class_names": [str(c) for c in seq.class_names]} if seq.class_names else None
        return tracking.log_model(model, data.example_inputs, metadata=metadata)


def load_sequences(config):
    """Load the data a config asks for, checking that it fits the mode.

    Raises:
        ZooError: for a dataset of another mode, an unusable file, or bad sizes.
    """
    mode = config.mode
    if mode not in sequences.MODES:
        raise ZooError(f"Unknown mode {mode!r}; use one of {', '.join(sequences.MODES)}.")
    if config.examples < 0:
        raise ZooError(f"`examples` must be 0 or more. Received: {config.examples}")
    if config.data:
        if config.dataset != "auto":
            raise ZooError("Pass either `data=PATH` or `dataset=NAME`, not both.")
        extension = os.path.splitext(config.data)[1].lower()
        if extension == ".csv" and mode == "many_to_many":
            return _series_csv(config)
        if extension == ".csv":
            if mode != "many_to_one":
                raise ZooError(f"A text CSV trains mode many_to_one (one label per text). Received: `mode={mode}`")
            return sequences.text_csv(
                config.data,
                config.text_column,
                config.target,
                seed=config.seed,
                max_tokens=config.max_tokens,
                sequence_length=config.sequence_length,
            )
        if extension == ".npz":
            if mode == "one_to_many":
                raise ZooError(
                    "`mode=one_to_many` trains on `dataset=digit_captions`; `data` takes sequences "
                    "for many_to_one or many_to_many."
                )
            return sequences.npz_sequences(
                config.data, mode=mode, pad=config.pad, pad_value=config.pad_value, seed=config.seed
            )
        raise ZooError(f"`data` must be a .csv of texts or an .npz of sequences. Received: {config.data}")
    dataset = DEFAULT_DATASETS[mode] if config.dataset == "auto" else config.dataset
    if DATASET_MODES[dataset] != mode:
        fits = [name for name, m in DATASET_MODES.items() if m == mode]
        raise ZooError(
            f"Dataset {dataset} trains `mode={DATASET_MODES[dataset]}`, not {mode}. "
            f"Datasets for {mode}: {', '.join(fits)}."
        )
    if dataset == "digits":
        return sequences.digit_rows(seed=config.seed)
    if dataset == "mnist":
        return sequences.mnist_rows(config.data_dir, seed=config.seed, download=config.download)
    if dataset == "imdb_reviews":
        return sequences.imdb_reviews(
            config.data_dir,
            seed=config.seed,
            max_tokens=config.max_tokens,
            sequence_length=config.sequence_length,
            download=config.download,
        )
    if dataset == "digit_video":
        return sequences.digit_video(seed=config.seed, frames=config.frames, videos=config.videos)
    if dataset == "goog":
        return sequences.stock_forecast("goog", window=config.window or 32, horizon=config.horizon)
    if dataset == "sunspots":
        return _series_windows(config, *series.load_sunspots(), "sunspots", series.sunspots_source())
    return sequences.digit_captions(seed=config.seed)


def _series_csv(config):
    """A CSV series to forecast, checked and cut into windows by time."""
    features = [f.strip() for f in (config.features or "").split(",") if f.strip()]
    name = os.path.splitext(os.path.basename(config.data))[0]
    if config.series_column:
        from zoo.datasets import panel

        groups, spec = panel.read_panel_csv(
            config.data, config.target, config.series_column, config.time_column, features
        )
        return _series_windows(config, groups, spec, name, os.path.abspath(config.data))
    frame, spec = series.read_series_csv(config.data, config.target, config.time_column, features)
    return _series_windows(config, frame, spec, name, os.path.abspath(config.data))


def _series_windows(config, frame, spec, name, source):
    """Windows of one series (a frame) or of several (a dict of frames: one global model)."""
    from zoo import forecast_transforms

    if not 0 <= config.interval < 1:
        raise ZooError(f"`interval` is a coverage between 0 and 1, e.g. 0.8 (0: none). Received: {config.interval}")
    if config.transform not in forecast_transforms.CHOICES:
        raise ZooError(
            f"`transform` must be one of {', '.join(forecast_transforms.CHOICES)}. Received: {config.transform}"
        )
    if config.transform == "seasonal" and not config.season:
        raise ZooError("`transform=seasonal` forecasts the residual over the seasonal naive: give `season=M` too.")
    if isinstance(frame, dict):
        from zoo.datasets import panel

        if config.backtest:
            raise ZooError("`backtest` is not built for several series (`series_column`); drop one of them.")
        shortest = min(len(f) for f in frame.values())
        window = config.window or _default_window(config.season, shortest, config.horizon)
        seq = panel.panel_windows(
            frame, spec, window=window, horizon=config.horizon, season=config.season, name=name, source=source
        )
        seq.extras["series_column"] = config.series_column
    else:
        seq = series.forecast_windows(
            frame,
            spec,
            window=config.window or _default_window(config.season, len(frame), config.horizon),
            horizon=config.horizon,
            season=config.season,
            name=name,
            source=source,
        )
    if config.transform == "seasonal" and seq.extras["window"] < config.season:
        raise ZooError(
            f"`transform=seasonal` reads last season's value inside the window: use `window` >= {config.season} "
            f"(the season). Received: window={seq.extras['window']}"
        )
    if config.backtest:
        from zoo import forecast_backtest

        forecast_backtest.origins(config.backtest, len(seq.extras["last_rows"]["test"]))
    chosen, scores = forecast_transforms.choose(seq, config.transform)
    seq.extras["transform"] = {
        "name": chosen,
        "statistics": forecast_transforms.statistics(seq, chosen),
        "validation_mae": scores,
    }
    for member in seq.extras.get("members", {}).values():
        member.extras["transform"] = seq.extras["transform"]
    return seq


def _default_window(season, rows, horizon):
    """12 steps; with a season, two seasons and at least 24 where the training part holds them."""
    if not season:
        return DEFAULT_WINDOW
    window = max(SEASONAL_WINDOW, 2 * season)
    train_rows = series.split_bounds(rows, horizon)["train"][1]
    return window if window + horizon <= train_rows - 1 else DEFAULT_WINDOW


def _model_inputs(x):
    """one_to_many inputs go to the model by input name; other inputs are one array."""
    if isinstance(x, tuple):
        return {"image": x[0], "previous_tokens": x[1]}
    return x


def _decoder_inputs(x):
    return x[0]


# === Examples of predicted sequences ===


def _log_classified(seq, predictions, count):
    """One prediction per sequence: a few as text, digit rows as images, the confusion matrix."""
    import mlflow

    from zoo import plots

    if seq.task == "regression":
        lines = [f"# {seq.name}: true -> predicted"]
        lines += [
            f"{i:4d}  {np.ravel(seq.y_test[i]).round(4).tolist()} -> {np.ravel(predictions[i]).round(4).tolist()}"
            for i in range(min(count, len(predictions)))
        ]
        mlflow.log_text("\n".join(lines) + "\n", "examples.txt")
        return
    predicted, confidence = _labels(seq, predictions)
    names = [str(c) for c in seq.class_names]
    lines = [f"# {seq.name}: true -> predicted (probability of the prediction)"]
    texts = seq.extras.get("texts_test")
    for i in range(min(count, len(predicted))):
        mark = "ok" if predicted[i] == int(seq.y_test[i]) else "WRONG"
        line = f"{i:4d}  {names[int(seq.y_test[i])]} -> {names[predicted[i]]} ({confidence[i]:.2f}) {mark}"
        if texts is not None:
            line += "  " + " ".join(texts[i].split())[:160]
        lines.append(line)
    mlflow.log_text("\n".join(lines) + "\n", "examples.txt")
    if seq.extras.get("rows_are_images") and count:
        shown = seq.x_test[:count]
        titles = [f"{names[int(t)]}->{names[p]}" for t, p in zip(seq.y_test[:count], predicted[:count])]
        tracking.log_figure(plots.image_grid(shown, titles), "examples.png")
    tracking.log_figure(plots.confusion_matrix(seq.y_test.astype(int), predicted, names), "confusion_matrix.png")


def _labels(seq, probabilities):
    if seq.task == "binary":
        p = probabilities.reshape(len(probabilities), -1)[:, 0]
        predicted = (p >= 0.5).astype(int)
        return predicted, np.where(predicted == 1, p, 1 - p)
    return probabilities.argmax(-1), probabilities.max(-1)


def _step_mask(seq):
    """True for real steps, False for padded ones (all features equal to the mask value)."""
    if seq.mask_value is None:
        return np.ones(seq.y_test.shape[:2], dtype=bool)
    return ~np.all(seq.x_test == seq.mask_value, axis=-1)


def _log_labelled_steps(seq, probabilities, count):
    """Per-step labels: the accuracy at each step position and the label strings of a few videos."""
    import mlflow

    from zoo import plots

    mask = _step_mask(seq)
    if seq.task == "regression":
        error = np.abs(probabilities - seq.y_test).mean(-1)
        for t in range(error.shape[1]):
            if mask[:, t].any():
                mlflow.log_metric("test_step_mae", float(error[:, t][mask[:, t]].mean()), step=t)
        if count:
            lines = [f"# {seq.name}: targets and predictions at each step (first feature)"]
            for i in range(min(count, len(error))):
                steps = np.flatnonzero(mask[i])
                lines.append(f"sequence {i}")
                lines.append("  true: " + " ".join(f"{seq.y_test[i, t, 0]:.3g}" for t in steps))
                lines.append("  pred: " + " ".join(f"{probabilities[i, t, 0]:.3g}" for t in steps))
            mlflow.log_text("\n".join(lines) + "\n", "examples.txt")
        return
    predicted = probabilities.argmax(-1)
    correct = predicted == seq.y_test
    for t in range(correct.shape[1]):
        if mask[:, t].any():
            mlflow.log_metric("test_step_accuracy", float(correct[:, t][mask[:, t]].mean()), step=t)
    names = [str(c) for c in seq.class_names]
    lines = [f"# {seq.name}: one label per step (x marks a wrong step)"]
    for i in range(min(count, len(predicted))):
        steps = np.flatnonzero(mask[i])
        lines.append(f"sequence {i}")
        lines.append("  true: " + " ".join(names[int(seq.y_test[i, t])] for t in steps))
        lines.append("  pred: " + " ".join(names[int(predicted[i, t])] for t in steps))
        lines.append(
            "        "
            + " ".join(
                "x" * len(names[int(predicted[i, t])]) if not correct[i, t] else " " * len(names[int(predicted[i, t])])
                for t in steps
            )
        )
    mlflow.log_text("\n".join(lines) + "\n", "examples.txt")
    frames = seq.extras.get("frames")
    if frames is not None and count:
        videos = min(4, len(frames), count)
        shown = frames[:videos].reshape(-1, *frames.shape[2:])
        titles = [
            f"{names[int(t)]}->{names[int(p)]}"
            for t, p in zip(seq.y_test[:videos].reshape(-1), predicted[:videos].reshape(-1))
        ]
        tracking.log_figure(plots.image_grid(shown, titles, columns=frames.shape[1]), "examples.png")


def _price_forecast(seq, predicted):
    """Turn the last step of each test window into a price forecast in dollars, with the truth."""
    extras = seq.extras
    days, series = extras["test_last_days"], extras["series"]
    # The last step of each window forecasts the day `horizon` after it: one forecast per test day.
    forecast = series[days] * np.exp(predicted[:, -1, 0] * extras["scale"])
    return {
        "days": days + extras["horizon"],
        "forecast": forecast,
        "actual": series[days + extras["horizon"]],
        "naive": series[days],
    }


def _log_forecast(seq, predicted, forecast, count):
    """The test prices against the model's and the persistence forecasts, in dollars."""
    import mlflow

    from zoo import plots

    horizon = seq.extras["horizon"]
    lines = [
        f"# {seq.name}: price {horizon} day(s) ahead from the last step of each test window (dollars)",
        "day  actual  forecast  persistence",
    ]
    for i in range(min(count, len(forecast["days"]))):
        lines.append(
            f"{forecast['days'][i]:4d}  {forecast['actual'][i]:7.2f}  {forecast['forecast'][i]:8.2f}  "
            f"{forecast['naive'][i]:8.2f}"
        )
    mlflow.log_text("\n".join(lines) + "\n", "examples.txt")
    start, end = seq.extras["test_days"]
    figure = plots.forecast(
        seq.extras["series"][start:end],
        forecast["days"] - start,
        forecast["forecast"],
        title=f"{seq.name}: {horizon} day(s) ahead on the test days",
    )
    tracking.log_figure(figure, "forecast.png")
    _log_labelled_steps(seq, predicted, 0)


def _judge_forecasts(seq, predicted, validation=None, interval=0.0):
    """Errors per horizon step of the network, each baseline and each statistical peer on the test windows.

    Returns:
        {"forecasts": {name: (windows, horizon)}, "errors": {name: {"mae"|"rmse"|"mase": (horizon,)}},
        "metrics": the test_* scalars (means over the horizon), "summary": the verdict text,
        "peers": {name: fitted model description}, "interval": None or {"level", "half_width",
        "lower", "upper"}}.
    """
    from zoo import forecast_peers, forecasting

    truth = forecasting.forecast_targets(seq)
    scale = forecasting.mase_scale(seq)
    peers = forecast_peers.peers(seq)
    forecasts = {
        "network": predicted[:, -1, :].astype("float64"),
        **forecasting.baselines(seq),
        **{name: peer["forecasts"] for name, peer in peers.items()},
    }
    errors = {name: forecasting.errors(values, truth, scale) for name, values in forecasts.items()}
    metrics = {}
    for name, error in errors.items():
        prefix = "test_" if name == "network" else f"test_{name}_"
        metrics |= {f"{prefix}{kind}": float(np.mean(values)) for kind, values in error.items()}
    baseline_mae = {name: metrics[f"test_{name}_mae"] for name in forecasts if name != "network"}
    metrics["test_naive_mae"] = metrics["test_persistence_mae"]
    metrics |= {f"{name}_fit_seconds": peer["seconds"] for name, peer in peers.items()}
    bounds = None
    if interval and validation is not None:
        last_rows = seq.extras["last_rows"]
        lower, upper, half_width = forecasting.online_conformal(
            (validation[:, -1, :], seq.y_val[:, -1, :].astype("float64"), last_rows["validation"]),
            (forecasts["network"], truth, last_rows["test"]),
            interval,
        )
        bounds = {"level": interval, "half_width": half_width.tolist(), "lower": lower, "upper": upper}
        metrics |= forecasting.interval_metrics(lower, upper, truth)
    text = forecasting.summary(metrics["test_mae"], baseline_mae, seq.name, seq.extras["horizon"])
    transform = seq.extras.get("transform")
    if transform:
        scores = ", ".join(f"{name} {mae:.4g}" for name, mae in transform["validation_mae"].items())
        text += f"\n- transform: {transform['name']}" + (
            f" (chosen on the validation span, ridge AR validation MAE: {scores})" if scores else " (as asked)"
        )
    text += "".join(f"\n- {name}: {peer['model']}" for name, peer in peers.items())
    text += "\n" + forecasting.winner_line(metrics)
    return {
        "truth": truth,
        "forecasts": forecasts,
        "errors": errors,
        "metrics": metrics,
        "summary": text,
        "peers": {name: peer["model"] for name, peer in peers.items()},
        "interval": bounds,
    }


def _forecast_info(seq, interval=None):
    """What `zoo predict` needs to window a CSV the way training did, with the interval's half widths."""
    extras = seq.extras
    info = extras["spec"].to_dict() | {"window": extras["window"], "horizon": extras["horizon"]}
    if "members" in extras:
        info["series_column"] = extras["series_column"]
    interval = interval or extras.get("interval")
    if interval:
        info["interval"] = {"level": interval["level"], "half_width": list(interval["half_width"])}
    return info


def _log_errors_and_verdicts(seq, judged):
    """Log the test errors per horizon step (the step as MLflow step), a `zoo.forecast.beats_*` tag
    per baseline and the verdict as the run's description: one series or several alike."""
    import mlflow

    for h in range(seq.extras["horizon"]):
        values = {}
        for name, error in judged["errors"].items():
            infix = "" if name == "network" else f"{name}_"
            values |= {f"test_horizon_{infix}{kind}": float(v[h]) for kind, v in error.items()}
        mlflow.log_metrics(values, step=h + 1)
    for name in judged["forecasts"]:
        if name != "network":
            beaten = judged["metrics"]["test_mae"] < judged["metrics"][f"test_{name}_mae"]
            mlflow.set_tag(f"zoo.forecast.beats_{name}", str(beaten).lower())
    mlflow.set_tag("mlflow.note.content", judged["summary"])


def _log_series_forecast(seq, predicted, judged, count, output):
    """Per horizon-step errors (step = steps ahead), the verdict, examples, and the forecast plot."""
    import json

    import mlflow

    from zoo import plots

    _log_errors_and_verdicts(seq, judged)
    transform = seq.extras.get("transform")
    if transform:
        mlflow.set_tag("zoo.forecast.transform", transform["name"])
    for name, model in judged["peers"].items():
        mlflow.set_tag(f"zoo.forecast.{name}_model", model)
    mlflow.log_text(judged["summary"] + "\n", "forecast_summary.txt")

    extras = seq.extras
    times, last = extras["times"], extras["last_rows"]["test"]
    horizon, names = extras["horizon"], list(judged["forecasts"])
    lines = [
        f"# {seq.name}: forecasts made at the end of each test window, {horizon} step(s) ahead (raw values)",
        "made_at  steps_ahead  truth  " + "  ".join(names),
    ]
    for i in range(min(count, len(last))):
        for h in range(horizon):
            row = "  ".join(f"{judged['forecasts'][n][i, h]:.4g}" for n in names)
            lines.append(f"{times[last[i]]}  {h + 1}  {judged['truth'][i, h]:.4g}  {row}")
    mlflow.log_text("\n".join(lines) + "\n", "examples.txt")

    start = extras["bounds"]["test"][0]
    shown = max(0, start - 3 * (len(extras["series"]) - start))
    panels = sorted({1, horizon})
    figure = plots.forecast_panels(
        times[shown:],
        extras["series"][shown:],
        times[start],
        {h: times[last + h] for h in panels},
        {h: {n: judged["forecasts"][n][:, h - 1] for n in names} for h in panels},
        title=f"{seq.name}: test span",
    )
    tracking.log_figure(figure, "forecast.png")
    _log_labelled_steps(seq, predicted, 0)
    if output:
        # `zoo predict FOLDER series.csv` reads it beside model.keras.
        try:
            os.makedirs(output, exist_ok=True)
            with open(os.path.join(output, "forecast.json"), "w") as handle:
                json.dump(_forecast_info(seq), handle, indent=2)
        except OSError as error:
            raise ZooError(f"Cannot write forecast.json into the `output` folder {output}: {error.strerror}.") from None


def _judge_panel(seq, predicted, validation, interval):
    """Each series judged on its own windows (its baselines and peers), then pooled (`forecast_panel`)."""
    from zoo import forecast_panel

    members, judged = seq.extras["members"], {}
    test_at = val_at = 0
    for key, member in members.items():
        tests, vals = len(member.y_test), len(member.y_val)
        judged[key] = _judge_forecasts(
            member, predicted[test_at : test_at + tests], validation[val_at : val_at + vals], interval
        )
        test_at, val_at = test_at + tests, val_at + vals
    return forecast_panel.combine(judged, members)


def _log_panel_forecast(seq, judged, output):
    """Several series: pooled per-step errors, beats_* tags, the verdict and the per-series table."""
    import json

    import mlflow

    from zoo import forecast_panel

    _log_errors_and_verdicts(seq, judged)
    mlflow.set_tag("zoo.forecast.transform", seq.extras["transform"]["name"])
    mlflow.set_tag("zoo.forecast.series_column", seq.extras["series_column"])
    mlflow.log_text(judged["summary"] + "\n", "forecast_summary.txt")
    forecast_panel.log(judged)
    if output:
        try:
            os.makedirs(output, exist_ok=True)
            with open(os.path.join(output, "forecast.json"), "w") as handle:
                json.dump(_forecast_info(seq), handle, indent=2)
        except OSError as error:
            raise ZooError(f"Cannot write forecast.json into the `output` folder {output}: {error.strerror}.") from None


def _log_backtest(seq, judged, count):
    """`--backtest K`: every model's errors at K origins spread over the test span."""
    from zoo import forecast_backtest

    last = seq.extras["last_rows"]["test"]
    chosen = forecast_backtest.origins(count, len(last))
    found = forecast_backtest.errors(judged["forecasts"], judged["truth"], chosen)
    times = seq.extras["times"][last[chosen]]
    forecast_backtest.log(found, times, seq.extras["horizon"], seq.name)


def _log_captions(seq, decoded, count):
    import mlflow

    from zoo import plots

    truth = seq.extras["captions"]
    lines = [f"# {seq.name}: true caption -> greedily decoded caption"]
    lines += [
        f"{i:4d}  {t} -> {d}{'' if t == d else '  WRONG'}"
        for i, (t, d) in enumerate(zip(truth[:count], decoded[:count]))
    ]
    wrong = [i for i, (t, d) in enumerate(zip(truth, decoded)) if t != d]
    lines.append(
        f"# {len(wrong)} of {len(truth)} test captions wrong: "
        + ", ".join(f"{truth[i]}->{decoded[i] or '(empty)'}" for i in wrong[:30])
    )
    mlflow.log_text("\n".join(lines) + "\n", "examples.txt")
    if count:
        shown = list(range(min(count, len(truth)))) + wrong[: max(0, count // 2)]
        titles = [(decoded[i] or "(empty)") + ("" if decoded[i] == truth[i] else f" (is {truth[i]})") for i in shown]
        tracking.log_figure(plots.image_grid(seq.extras["images"][shown], titles), "examples.png")


# === The three cells: one recipe each, sharing everything above ===


@training.register_recipe
class RNNRecipe(RecurrentRecipe):
    name = "rnn"
    summary = "Simple RNN: digits row by row (default), digit video frames, forecasting, captions (--mode)."
    model = "rnn"


@training.register_recipe
class LSTMRecipe(RecurrentRecipe):
    name = "lstm"
    summary = "LSTM: digits row by row (default), digit video frames, forecasting, captions (--mode)."
    model = "lstm"


@training.register_recipe
class GRURecipe(RecurrentRecipe):
    name = "gru"
    summary = "GRU: digits row by row (default), digit video frames, forecasting, captions (--mode)."
    model = "gru"
