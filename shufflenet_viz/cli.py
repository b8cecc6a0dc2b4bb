"""Command line: `python -m shufflenet_viz {flops,train,predict,weights} ...`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


class UsageError(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump, no traceback
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _train(args) -> int:
    from .train import TrainSettings, command_line, train

    settings = TrainSettings(groups=args.groups, width=args.width, shuffle=not args.no_shuffle, data=args.data,
                             epochs=args.epochs, size=args.size, seed=args.seed, out=Path(args.out),
                             batch_size=args.batch_size, lr=args.lr)
    train(settings, command_line(sys.argv[1:] if args.argv is None else args.argv))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m shufflenet_viz", description="ShuffleNet v1, explained.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train ShuffleNet v1 on CIFAR-10 and register it in the manifest")
    train.add_argument("--groups", type=int, required=True, choices=(1, 2, 3, 4, 8))
    train.add_argument("--width", type=float, default=1.0)
    train.add_argument("--no-shuffle", action="store_true", help="turn channel shuffle off (Table 3 ablation)")
    train.add_argument("--data", required=True,
                       help="cifar10_jpg.tar.gz, a folder with its layout, or 'torchvision' (downloads)")
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--size", type=int, default=224, help="training input size (images are upsampled)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--batch-size", type=int, default=256)
    train.add_argument("--lr", type=float, default=0.4, help="peak learning rate at batch 256 (scaled linearly)")
    train.add_argument("--out", required=True, help="weights/NAME.pt")
    train.set_defaults(run=_train, argv=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if argv is not None:
            args.argv = argv
        return args.run(args)
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2
