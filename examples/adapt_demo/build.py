"""Train the demo's default model from scratch on the bundled MNIST (mnist5k) and export ONNX.

Run from the repository root:

    python examples/adapt_demo/build.py --arch mobilenet_v1 --width 1.0 --out out/adapt_demo

It trains on the mnist5k training split only (the validation split is never seen in training),
on the CPU with all threads, exports ``DIR/<arch>_w<width>.onnx`` (opset 17, dynamic batch,
BatchNormalization kept as separate nodes), checks ONNX Runtime against torch, and writes the
validation accuracy beside it in ``<name>.json``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from onnx_netadapt.demo.build import DEFAULT_EPOCHS, build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mobilenet_v1", choices=["mobilenet_v1", "resnet"])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=Path("out/adapt_demo"))
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="train on this many examples")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    record = build_model(
        args.arch, args.width, args.out, epochs=args.epochs, seed=args.seed, limit=args.limit
    )
    print(
        f"wrote {record['path']}: val accuracy {record['val_accuracy']:.2%}, "
        f"{record['params']:,} parameters, trained in {record['train_seconds']:.1f} s"
    )


if __name__ == "__main__":
    main()
