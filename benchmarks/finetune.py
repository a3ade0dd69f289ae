"""Benchmark: fine-tuning from a logged model (`zoo train RECIPE --init-from RUN_ID`) against the same
few rows trained from scratch.

CNN: a `cnn` trained on the digits 0-4 (scikit-learn's 8x8 scans, written to an image folder),
then the digits 5-9 with few rows (24 scans of each: 54 train, 12 validate, 54 test):
fine-tuned from the first model (every layer but the new classifier head taken) against the same
rows from scratch; the same epochs, seed and split. Target: the fine-tuned test accuracy is
higher. It also prints the run that trains the new head alone first (`--freeze all-but-head` for 5
epochs, then everything at a tenth of the learning rate), which checks no target.

OCR: a `crnn` trained on digit lines (`zoo train ocr`), then another kind of line image: other
digit scans drawn dark on light paper and labelled with letters (a new alphabet, so a new output
layer), from a folder; fine-tuned against from scratch, the same epochs. Target: the fine-tuned
run reaches the validation character error rate `--cer` in fewer epochs.

    python benchmarks/finetune.py            # both: cnn 91 s, ocr 579 s on 2 shared cores
    python benchmarks/finetune.py --quick    # a smoke run: few epochs, few lines

The runs go to a temporary MLflow store, so the benchmark leaves nothing behind.
"""

import argparse
import csv
import os
import sys
import tempfile
import time

import gate
import numpy as np


def digit_folder(folder, classes, per_class=None):
    """An image folder (one subfolder per class) of scikit-learn's 8x8 digit scans."""
    import sklearn.datasets
    from PIL import Image

    bunch = sklearn.datasets.load_digits()
    for label in classes:
        os.makedirs(os.path.join(folder, str(label)))
        for index, image in enumerate(bunch.images[bunch.target == label][:per_class]):
            Image.fromarray((image * 255 / 16).astype("uint8")).save(os.path.join(folder, str(label), f"{index}.png"))
    return folder


def letter_lines(folder, count, seed):
    """A `--data` folder of line images unlike the training ones: dark digits on light paper, read as letters."""
    from PIL import Image

    from zoo.datasets import text_lines

    os.makedirs(folder)
    lines = text_lines.digit_lines(seed=seed, lines=(count, 1, 1), lengths=(3, 8))
    with open(os.path.join(folder, "labels.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "words"])
        for index, (pixels, text) in enumerate(zip(lines.x_train, lines.texts_train)):
            Image.fromarray(((1.0 - pixels[..., 0]) * 255).astype("uint8")).save(os.path.join(folder, f"{index}.png"))
            writer.writerow([f"{index}.png", "".join("abcdefghij"[int(d)] for d in text)])
    return folder, int(lines.x_train.shape[1])


def first_epoch(history, metric, at_most):
    """The first epoch (1-based) whose `metric` is at most `at_most`, or None."""
    for epoch, value in enumerate(history.get(metric, []), start=1):
        if value <= at_most:
            return epoch
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", choices=("cnn", "ocr"), help="run one part")
    parser.add_argument("--cer", type=float, default=0.3, help="validation CER the OCR runs race to (default 0.3)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of the script (targets still apply)")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from zoo import training

    verdicts = []
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        common = {"seed": args.seed, "tracking_uri": f"sqlite:///{folder}/mlflow.db", "experiment": "finetune"}
        if args.only in (None, "cnn"):
            first = digit_folder(os.path.join(folder, "first"), range(5))
            second = digit_folder(os.path.join(folder, "second"), range(5, 10), per_class=24)
            epochs = 4 if args.quick else 20
            started = time.perf_counter()
            source = training.train("cnn", {**common, "data": first, "epochs": 4 if args.quick else 15})
            print(f"cnn source on digits 0-4: test_accuracy={source.metrics['test_accuracy']:.4f}", flush=True)
            # 24 scans of each of the digits 5-9: 54 train (about 11 a class), 12 validate, 54 test.
            few = {**common, "data": second, "epochs": epochs, "test_fraction": 0.45, "validation_fraction": 0.1}
            tuned = training.train("cnn", {**few, "init_from": source.run_id})
            frozen = training.train(
                "cnn",
                {**few, "init_from": source.run_id, "freeze": "all-but-head", "freeze_epochs": min(5, epochs - 1)},
            )
            scratch = training.train("cnn", few)
            for name, result in (
                ("fine-tuned", tuned),
                ("fine-tuned, head alone first", frozen),
                ("from scratch", scratch),
            ):
                print(
                    f"cnn {name} on digits 5-9, few rows: test_accuracy={result.metrics['test_accuracy']:.4f} "
                    f"epochs={int(result.metrics['epochs_trained'])}",
                    flush=True,
                )
            print(f"cnn part: {time.perf_counter() - started:.0f} s", flush=True)
            verdicts.append(
                gate.check(
                    "cnn fine-tuned minus from-scratch test accuracy",
                    tuned.metrics["test_accuracy"] - scratch.metrics["test_accuracy"],
                    0.0 + 1e-9,
                )
            )
        if args.only in (None, "ocr"):
            started = time.perf_counter()
            # The recipe's default run (4,000 lines, 20 epochs): a source that reads digit lines.
            small = {"lines": (300, 60, 60), "epochs": 3, "patience": 0} if args.quick else {}
            source = training.train("ocr", {**common, **small})
            print(
                f"ocr source on digit lines: test_char_error_rate={source.metrics['test_char_error_rate']:.4f}",
                flush=True,
            )
            lines, height = letter_lines(os.path.join(folder, "letters"), 150 if args.quick else 400, args.seed + 1)
            target = {**common, "data": lines, "image_height": height, "epochs": 3 if args.quick else 12, "patience": 0}
            tuned = training.train("ocr", {**target, "init_from": f"runs:/{source.run_id}/model"})
            scratch = training.train("ocr", target)
            reached = {}
            for name, result in (("fine-tuned", tuned), ("from scratch", scratch)):
                curve = result.history.get("val_char_error_rate", [])
                reached[name] = first_epoch(result.history, "val_char_error_rate", args.cer)
                print(
                    f"ocr {name} on dark-on-light letter lines: first epoch with validation CER <= {args.cer}: "
                    f"{reached[name]}; validation CER by epoch {', '.join(f'{v:.3f}' for v in curve)}; "
                    f"test_char_error_rate={result.metrics['test_char_error_rate']:.4f}",
                    flush=True,
                )
            print(f"ocr part: {time.perf_counter() - started:.0f} s", flush=True)
            never = 10**6
            tuned_epochs = reached["fine-tuned"] or never
            scratch_epochs = reached["from scratch"] or never
            verdicts.append(
                gate.check("ocr epochs saved by fine-tuning", float(np.sign(scratch_epochs - tuned_epochs)), 1.0)
            )
    return gate.exit_status(*verdicts)


if __name__ == "__main__":
    sys.exit(main())
