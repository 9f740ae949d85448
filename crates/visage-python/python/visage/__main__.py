"""``python -m visage fetch [--models DIR]``: installs the models as ``visage models fetch`` does."""

import argparse
import sys

from . import fetch_models


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m visage")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fetch", help="download and verify the model files")
    f.add_argument("--models", help="model folder (default VISAGE_MODELS or ~/.local/share/visage/models)")
    f.add_argument("--force", action="store_true")
    a = p.parse_args()
    for path in fetch_models(a.models, True, sys.executable, a.force):
        print("ok", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
