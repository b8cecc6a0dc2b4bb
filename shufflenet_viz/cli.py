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
    from .data import DatasetError
    from .model import ShuffleNetConfig
    from .train import TrainSettings, command_line, train

    out = Path(args.out)
    if out.suffix != ".pt":
        raise UsageError(f"train: --out must name a .pt file such as weights/cifar10_g3.pt, got {args.out}")
    try:
        ShuffleNetConfig(groups=args.groups, width=args.width, num_classes=10)
    except ValueError as error:
        raise UsageError(f"train: {error}") from None
    settings = TrainSettings(groups=args.groups, width=args.width, shuffle=not args.no_shuffle, data=args.data,
                             epochs=args.epochs, size=args.size, seed=args.seed, out=out,
                             batch_size=args.batch_size, lr=args.lr)
    try:
        train(settings, command_line(sys.argv[1:] if args.argv is None else args.argv))
    except DatasetError as error:
        raise UsageError(f"train: {error}") from None
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value}")
    return value


def _width(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a width multiplier such as 0.5 or 1.0, got {text!r}") from None
    if not 0 < value <= 4:
        raise argparse.ArgumentTypeError(f"width must be in (0, 4], e.g. 0.25, 0.5, 1.0, 1.5, 2.0; got {text}")
    return value


def _flops(args) -> int:
    import json

    from .flops import flop_report, format_table

    try:
        report = flop_report(args.groups, args.width, args.size, args.classes)
    except ValueError as error:
        raise UsageError(f"flops: {error}") from None
    print(json.dumps(report.to_dict(), indent=1) if args.json else format_table(report))
    return 0


def _predict(args) -> int:
    import json

    from .images import ImageError, load_image_file
    from .inference import classify
    from .weights import WeightsError, load_model

    try:
        loaded = load_model(args.model)
    except WeightsError as error:
        raise UsageError(f"predict: {error}") from None
    results = []
    for path in args.images:
        try:
            image = load_image_file(path)
        except ImageError as error:
            raise UsageError(f"predict: {error}") from None
        top = classify(loaded, image.image).top(args.top)
        results.append({"image": path, "model": loaded.name,
                        "top": [{"class": name, "probability": round(p, 6)} for name, p in top],
                        "notes": image.notes})
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=1))
    else:
        for result in results:
            print(f"{result['image']} ({loaded.label}):")
            for row in result["top"]:
                print(f"  {row['probability']:7.2%}  {row['class']}")
            for note in result["notes"]:
                print(f"  note: {note}")
    return 0


def _fetch(args) -> int:
    from .imagenet import fetch_imagenet
    from .weights import WeightsError

    try:
        name = fetch_imagenet(args.groups, args.width)
    except WeightsError as error:
        raise UsageError(f"weights fetch: {error}") from None
    print(f"added {name} to weights/manifest.json; restart the app to compare it")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m shufflenet_viz", description="ShuffleNet v1, explained.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train ShuffleNet v1 on CIFAR-10 and register it in the manifest")
    train.add_argument("--groups", type=int, required=True, choices=(1, 2, 3, 4, 8))
    train.add_argument("--width", type=_width, default=1.0)
    train.add_argument("--no-shuffle", action="store_true", help="turn channel shuffle off (Table 3 ablation)")
    train.add_argument("--data", required=True,
                       help="cifar10_jpg.tar.gz, a folder with its layout, or 'torchvision' (downloads)")
    train.add_argument("--epochs", type=_positive_int, default=30)
    train.add_argument("--size", type=_positive_int, default=224, help="training input size (images are upsampled)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--batch-size", type=_positive_int, default=256)
    train.add_argument("--lr", type=float, default=0.4, help="peak learning rate at batch 256 (scaled linearly)")
    train.add_argument("--out", required=True, help="weights/NAME.pt")
    train.set_defaults(run=_train, argv=None)

    flops = commands.add_parser("flops", help="print multiply-adds and parameters per ShuffleNet unit")
    flops.add_argument("--groups", type=int, default=3, choices=(1, 2, 3, 4, 8))
    flops.add_argument("--width", type=_width, default=1.0)
    flops.add_argument("--size", type=_positive_int, default=224, help="input image side in pixels")
    flops.add_argument("--classes", type=_positive_int, default=1000, help="classifier outputs")
    flops.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    flops.set_defaults(run=_flops)

    predict = commands.add_parser("predict", help="classify image files with a shipped model")
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    predict.add_argument("--model", default="cifar10_g3", help="a name from weights/manifest.json")
    predict.add_argument("--top", type=_positive_int, default=5)
    predict.add_argument("--json", action="store_true")
    predict.set_defaults(run=_predict)

    weights = commands.add_parser("weights", help="manage weights")
    weights_commands = weights.add_subparsers(dest="weights_command", required=True, parser_class=_Parser)
    fetch = weights_commands.add_parser("fetch", help="download pretrained weights (needs the internet)")
    fetch.add_argument("dataset", choices=("imagenet",))
    fetch.add_argument("--groups", type=int, required=True, choices=(1, 3))
    fetch.add_argument("--width", type=float, default=1.0, choices=(1.0, 0.5, 0.25))
    fetch.set_defaults(run=_fetch)
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
