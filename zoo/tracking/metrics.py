"""Per-epoch metrics, written off the training thread by a writer that each run owns, and read back.

Anything about logging a run's metrics while it trains belongs here.
"""

import queue
import threading
import time

from zoo.tracking.lazy import mlflow

_STOP = object()  # queued by `close`: the writer thread ends when it reaches it


class EpochMetrics:
    """One background thread that writes epoch metrics with plain `log_batch` calls, in order.

    MLflow's own asynchronous logging (`synchronous=False`) costs about 0.9 s per run: its flush
    waits out a 1 s poll of its queue before it returns. Here `flush` returns as soon as the
    pending writes are done, and the training thread only puts a dict on a queue (microseconds).
    Epochs that end within `interval` seconds of each other share one write: a SQLite write costs
    about 5 ms of CPU whatever it holds, which the thread takes from training on a small machine
    (8 % of an epoch of the tabular MLP on 2 cores). The MLflow UI sees an epoch at most
    `interval` seconds late; `flush` writes at once.

    A run owns one, as a context manager: leaving the block writes what is pending and ends the
    thread.

    Example:
        >>> with EpochMetrics() as metrics:
        ...     model.fit(..., callbacks=[metrics_callback(metrics)])
        ...     metrics.flush()
    """

    MAX_METRICS = 1000  # MLflow's limit for one log_batch

    def __init__(self, interval=1.0):
        self.interval = interval
        self._queue = queue.Queue()
        self._flushing = threading.Event()
        self._thread = None
        self._error = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def log_epoch(self, epoch, logs, run_id=None):
        """Log one epoch's Keras logs with the epoch as step, without blocking training.

        Written by the background thread (microseconds on the training thread, where a synchronous
        call costs 4 ms (SQLite) to 50 ms (HTTP)); `flush` waits for the writes.

        Args:
            epoch: the step.
            logs: Keras' epoch logs; what is not a number is left out.
            run_id: the run to log to (default: MLflow's active run, which only the thread that
                started it sees).
        """
        metrics = {key: float(value) for key, value in (logs or {}).items() if _is_number(value)}
        if metrics:
            self.log(run_id or mlflow.active_run().info.run_id, metrics, epoch)

    def log(self, run_id, metrics, step):
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._write, name="zoo-epoch-metrics", daemon=True)
            self._thread.start()
        self._queue.put((mlflow.get_tracking_uri(), run_id, metrics, step, int(time.time() * 1000)))

    def _write(self):
        from mlflow.entities import Metric

        clients = {}
        while True:
            pending = [self._queue.get()]
            self._flushing.wait(self.interval)
            while True:
                try:
                    pending.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batches = {}
            for item in pending:
                if item is _STOP:
                    continue
                uri, run_id, metrics, step, timestamp = item
                batches.setdefault((uri, run_id), []).extend(Metric(k, v, timestamp, step) for k, v in metrics.items())
            try:
                for (uri, run_id), rows in batches.items():
                    client = clients.get(uri) or clients.setdefault(uri, mlflow.MlflowClient(uri))
                    for start in range(0, len(rows), self.MAX_METRICS):
                        client.log_batch(run_id, metrics=rows[start : start + self.MAX_METRICS])
            except Exception as error:  # noqa: BLE001 - re-raised on the training thread by flush()
                self._error = error
            finally:
                for _ in pending:
                    self._queue.task_done()
            if any(item is _STOP for item in pending):
                return

    def flush(self, raise_errors=True):
        """Wait for the epoch metrics still being written (ours and MLflow's asynchronous queue).

        Raises:
            MlflowException: the first failed write, unless `raise_errors` is False (a run that is
                failing already keeps its own reason).
        """
        self._flushing.set()
        try:
            self._queue.join()
        finally:
            self._flushing.clear()
        error, self._error = self._error, None
        if error is not None and raise_errors:
            raise error
        mlflow.flush_async_logging()

    def close(self):
        """Write what is pending (errors were raised by `flush` already, or are moot) and end the thread."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._flushing.set()
            self._thread.join()
            self._flushing.clear()
        self._thread = None


def metrics_callback(metrics):
    """A Keras callback that logs each epoch's logs with `metrics.log_epoch` (an `EpochMetrics`)."""
    import keras

    class MlflowEpochMetrics(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            metrics.log_epoch(epoch, logs)

    return MlflowEpochMetrics()


def metric_histories(run_id, names):
    """Return {name: [value per step]} from the run's logged history (a resumed run's curves)."""
    client = mlflow.MlflowClient()
    return {
        name: [m.value for m in sorted(client.get_metric_history(run_id, name), key=lambda m: m.step)] for name in names
    }


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
