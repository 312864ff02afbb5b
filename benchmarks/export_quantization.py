"""Size and accuracy of a classifier exported to TFLite, float and quantized.

Exports a trained classifier preset (by default the one
`examples/text_classification.py` saves) to TFLite twice, float32 and with
dynamic-range quantization (`--quantize`), through
`keras_linformer.export.export_model` (a TensorFlow-backend subprocess when
this process runs JAX or PyTorch). It then classifies the test split of the
example's fixed-seed stratified split (BBC News by default) with Keras and
with both `.tflite` files on the LiteRT interpreter, tokenizing with the
preset's own preprocessor, and reports file sizes, test accuracy, agreement
with the Keras predictions and the largest probability difference.

Usage:

```
python examples/text_classification.py            # trains and saves the preset
python benchmarks/export_quantization.py          # then this
python benchmarks/export_quantization.py --preset DIR --data FOLDER
python benchmarks/export_quantization.py --max-test-examples 32  # smoke test
```

Results go to `benchmarks/results/export/` (or `--out`): a markdown table
(`export_quantization.md`), `export_quantization.json` and
`export_quantization.png`.
"""

import argparse
import importlib.util
import os
import sys

import numpy as np

import harness

REPO_ROOT = harness.REPO_ROOT
BATCH_SIZE = 32


def load_example():
    """The classification example, for its data loading and split."""
    path = os.path.join(REPO_ROOT, "examples", "text_classification.py")
    spec = importlib.util.spec_from_file_location("text_classification", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--preset",
        default=os.path.join(
            REPO_ROOT, "saved_models", "linformer_text_classifier"
        ),
        help="a classifier preset folder",
    )
    parser.add_argument(
        "--data",
        help="the folder the preset was trained on (default: BBC News)",
    )
    parser.add_argument(
        "--out",
        default=os.path.join(REPO_ROOT, "benchmarks", "results", "export"),
    )
    parser.add_argument(
        "--max-test-examples",
        type=int,
        help="classify only the first this many test documents (a smoke "
        "test; default: the whole test split)",
    )
    args = parser.parse_args(argv)
    harness.check_positive(parser, args, ("max_test_examples",))
    return args


def tflite_probabilities(path, batches):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path).get_signature_runner()
    return np.concatenate(
        [runner(**batch)["probabilities"] for batch in batches]
    )


def main(argv=None):
    args = parse_args(argv)
    example = load_example()
    example_args = example.parse_args(
        ["--data", args.data] if args.data else []
    )
    texts, labels, class_names = example.load_data(example_args)
    test_texts, test_labels = example.stratified_split(texts, labels)[2]
    test_texts = test_texts[: args.max_test_examples]
    test_labels = test_labels[: args.max_test_examples]

    import keras
    import keras_hub

    import keras_linformer  # noqa: F401 (registers the preset's classes)
    from keras_linformer.export import export_model

    classifier = keras_hub.models.TextClassifier.from_preset(args.preset)
    keras_probabilities = keras.ops.convert_to_numpy(
        keras.ops.softmax(
            classifier.predict(test_texts, batch_size=BATCH_SIZE, verbose=0)
        )
    )
    batches = [
        {
            name: keras.ops.convert_to_numpy(value).astype("int32")
            for name, value in classifier.preprocessor(
                test_texts[start : start + BATCH_SIZE]
            ).items()
        }
        for start in range(0, len(test_texts), BATCH_SIZE)
    ]
    rows = [
        {
            "model": f"Keras ({keras.backend.backend()})",
            "size_bytes": None,
            "probabilities": keras_probabilities,
        }
    ]
    os.makedirs(args.out, exist_ok=True)
    for name, quantize in (
        ("TFLite float32", False),
        ("TFLite dynamic-range int8", True),
    ):
        path = export_model(
            args.preset,
            format="tflite",
            out=os.path.join(args.out, "quantized" if quantize else "float"),
            overwrite=True,
            quantize=quantize,
        )
        rows.append(
            {
                "model": name,
                "size_bytes": os.path.getsize(path),
                "probabilities": tflite_probabilities(path, batches),
            }
        )

    keras_predictions = keras_probabilities.argmax(-1)
    results = []
    for row in rows:
        predictions = row["probabilities"].argmax(-1)
        results.append(
            {
                "model": row["model"],
                "size_bytes": row["size_bytes"],
                "test_accuracy": float((predictions == test_labels).mean()),
                "agreement_with_keras": float(
                    (predictions == keras_predictions).mean()
                ),
                "max_probability_difference": float(
                    np.abs(row["probabilities"] - keras_probabilities).max()
                ),
            }
        )
    keras_accuracy = results[0]["test_accuracy"]
    rows = [
        [
            result["model"],
            "-"
            if result["size_bytes"] is None
            else f"{result['size_bytes'] / 1024:.0f} KiB",
            f"{100 * result['test_accuracy']:.2f}%",
            f"{100 * (result['test_accuracy'] - keras_accuracy):+.2f} points",
            f"{100 * result['agreement_with_keras']:.2f}%",
            f"{result['max_probability_difference']:.2e}",
        ]
        for result in results
    ]
    headers = [
        "model", "file size", "test accuracy", "change vs Keras",
        "agreement with Keras", "max abs. probability difference",
    ]  # fmt: skip
    report = (
        f"Test split: {len(test_labels)} documents, {len(class_names)} "
        "classes.\n\n" + harness.markdown_table(headers, rows, "lrrrrr")
    )
    print(report)
    harness.write_results(
        args.out,
        "export_quantization",
        report,
        {
            "preset": args.preset,
            "benchmark_backend": keras.backend.backend(),
            "test_size": len(test_labels),
            "results": results,
        },
        lambda path: plot(results[1:], path),
    )


def plot(results, path):
    import matplotlib.pyplot as plt

    names = [result["model"] for result in results]
    figure, (size_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(9, 3.5))
    size_axis.bar(names, [r["size_bytes"] / 1024 for r in results])
    size_axis.set_ylabel("file size (KiB)")
    accuracy_axis.bar(names, [100 * r["test_accuracy"] for r in results])
    accuracy_axis.set_ylabel("test accuracy (%)")
    accuracy_axis.set_ylim(
        min(100 * r["test_accuracy"] for r in results) - 5, 100
    )
    for axis in (size_axis, accuracy_axis):
        axis.tick_params(axis="x", labelsize=8)
    figure.suptitle("TFLite export: float32 vs dynamic-range quantization")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
