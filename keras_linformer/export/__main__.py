"""Command line: `python -m keras_linformer.export MODEL --format F --out DIR`.

Arguments are parsed before any model is read, and a bad format is a usage
error. Errors a user can cause end with one line on stderr and exit status 2.
"""

import argparse
import sys

from keras_linformer.export.errors import ExportError
from keras_linformer.export.exporter import FORMATS
from keras_linformer.export.exporter import export_model
from keras_linformer.export.model_loading import read_class_names_file


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_linformer.export",
        description=(
            "Export a keras-linformer model (a .keras file or a preset "
            "folder, trained on any backend) as a SavedModel for TF Serving "
            "or a builtins-only .tflite file for LiteRT."
        ),
    )
    parser.add_argument("model", help="a .keras file or a local preset folder")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--out", required=True, help="the folder to create")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out if it exists (only once the export succeeded)",
    )
    parser.add_argument(
        "--quantize",
        action="store_true",
        help="dynamic-range quantization (tflite only)",
    )
    parser.add_argument(
        "--with-text",
        action="store_true",
        help="also add classify_text (strings in) to a classifier's "
        "SavedModel; loading it then needs TensorFlow Text (saved_model only)",
    )
    parser.add_argument(
        "--class-names",
        metavar="FILE",
        help="a text file with one class name per line, in class index "
        "order (default: class_names.txt of a preset folder, if any)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="print no progress messages"
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        class_names = None
        if args.class_names is not None:
            class_names = read_class_names_file(args.class_names)
        export_model(
            args.model,
            format=args.format,
            out=args.out,
            overwrite=args.overwrite,
            quantize=args.quantize,
            include_text=args.with_text,
            class_names=class_names,
            verbose=not args.quiet,
        )
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
