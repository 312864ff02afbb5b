"""Command line: `python -m keras_linformer.export MODEL --format F --out DIR`.

Errors a user can cause end with one line on stderr and exit status 2.
"""

import argparse
import sys

from keras_linformer.export.errors import ExportError
from keras_linformer.export.exporter import FORMATS
from keras_linformer.export.exporter import export_model


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_linformer.export",
        description=(
            "Export a keras-linformer model (a .keras file or a preset "
            "folder, trained on any backend) as a SavedModel for TF Serving "
            "or a builtins-only .tflite file for LiteRT."
        ),
    )
    parser.add_argument("model", help="a .keras file or a local preset folder")
    parser.add_argument(
        "--format", required=True, help=f"one of: {', '.join(FORMATS)}"
    )
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
    args = parser.parse_args(argv)
    try:
        path = export_model(
            args.model,
            format=args.format,
            out=args.out,
            overwrite=args.overwrite,
            quantize=args.quantize,
        )
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Exported {args.model} as {args.format}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
