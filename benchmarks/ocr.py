"""Benchmark: `zoo train ocr` (CRNN + CTC on lines of handwritten digits) over seeds and line lengths.

Prints one line per run with the test character error rate (edit distance / characters), the
exact line match and the time per epoch, then whether every default run met its targets
(character error rate <= 0.03, exact match >= 0.85, the targets of issue 20). The runs go to a
temporary MLflow store, so the benchmark leaves nothing behind.

- default: `zoo train ocr --seed S` (lines of 3-8 digits; test lines from scans never seen in training).
- lengths: trained on lines of 3-6 digits, tested on 7-8 (lengths never seen in training) and on
  3-6 (seen lengths, the same test scans). A figure, not a target: CTC reads column by column,
  so it should carry over to longer lines.

    python benchmarks/ocr.py                          # seeds 42,1,2, then the lengths run (seed 42)
    python benchmarks/ocr.py --seeds 42 --no-lengths   # one default run
    python benchmarks/ocr.py --json figures.json       # also write the figures as JSON
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

TARGET_CER = 0.03
TARGET_EXACT = 0.85


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="42,1,2", help="comma-separated seeds (default: 42,1,2; '' for none)")
    parser.add_argument("--no-lengths", action="store_true", help="skip the seen/unseen line-length run")
    parser.add_argument("--epochs", type=int, help="cap the epochs (default: the recipe's)")
    parser.add_argument("--json", metavar="PATH", help="also write one record per run to this JSON file")
    args = parser.parse_args(argv)
    if args.json:
        args.json = os.path.abspath(args.json)  # the runs below change the working directory
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from zoo import training
    from zoo.datasets import images, text_lines
    from zoo.recipes import ocr

    failures, records = 0, []
    extra = {"epochs": args.epochs} if args.epochs else {}
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        store = f"sqlite:///{folder}/mlflow.db"

        def run(seed, **options):
            started = time.perf_counter()
            result = training.train("ocr", {"seed": seed, "tracking_uri": store, **extra, **options})
            m = result.metrics
            return result, {
                "seed": seed,
                "cer": m["test_char_error_rate"],
                "exact_match": m["test_exact_match"],
                "baseline_cer": m["test_baseline_char_error_rate"],
                "epochs": int(m["epochs_trained"]),
                "train_seconds": m["train_seconds"],
                "seconds_per_epoch": m["train_seconds"] / max(1, m["epochs_trained"]),
                "wall_seconds": time.perf_counter() - started,
            }

        for seed in (int(s) for s in args.seeds.split(",") if s):
            _, record = run(seed)
            met = record["cer"] <= TARGET_CER and record["exact_match"] >= TARGET_EXACT
            failures += not met
            records.append({"run": "default (3-8 digits)", **record, "met": met})
            print(
                f"default  seed={seed:<3} test CER={record['cer']:.4f} (target <= {TARGET_CER}) "
                f"exact match={record['exact_match']:.4f} (target >= {TARGET_EXACT}) {'met' if met else 'MISSED'}  "
                f"baseline CER={record['baseline_cer']:.3f} epochs={record['epochs']} "
                f"s/epoch={record['seconds_per_epoch']:.1f} wall_seconds={record['wall_seconds']:.0f}",
                flush=True,
            )

        if not args.no_lengths:
            seed = 42
            result, record = run(seed, digits=(3, 6), test_digits=(7, 8))
            # The same seed splits the scans the same way: these seen-length lines use the same test scans.
            seen = text_lines.digit_lines(seed, lengths=(3, 6), test_lengths=(3, 6))
            # Shorter lines make narrower images: pad them with background to the model's width.
            width = int(result.model.input_shape[2]) - seen.x_test.shape[2]
            pixels = np.pad(seen.x_test, ((0, 0), (0, 0), (0, width), (0, 0))) * images.PIXEL_MAX
            texts, _ = ocr.read(result.model, pixels, seen.alphabet)
            record.update(
                seen_cer=ocr.char_error_rate(seen.texts_test, texts),
                seen_exact_match=ocr.exact_match(seen.texts_test, texts),
            )
            records.append({"run": "lengths: train 3-6, test 7-8", **record})
            print(
                f"lengths  seed={seed:<3} trained on 3-6 digits: unseen 7-8 CER={record['cer']:.4f} "
                f"exact match={record['exact_match']:.4f}; seen 3-6 CER={record['seen_cer']:.4f} "
                f"exact match={record['seen_exact_match']:.4f}  epochs={record['epochs']} "
                f"s/epoch={record['seconds_per_epoch']:.1f} wall_seconds={record['wall_seconds']:.0f}",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"runs": records, "failures": failures}, handle, indent=2)
    print("all targets met" if not failures else f"{failures} run(s) missed their target")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
