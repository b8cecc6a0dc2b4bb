"""Command line: `python -m shufflenet_viz {flops,train,predict,weights} ...`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


class UsageError(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump, no traceback
        raise UsageError(f"{self.prog}: {message} (see --help)")

    def print_help(self, file=None):  # argparse drops write errors; a closed stdout must reach main()
        (file or sys.stdout).write(self.format_help())


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
    from tqdm import tqdm

    from .imagenet import INSTALLED, CATALOGUE, RECOMMENDED, exit_status, find_checkpoint, install_checkpoints
    from .weights import WeightsError

    try:
        if args.all:
            checkpoints = [CATALOGUE[name] for name in RECOMMENDED]
        elif args.groups is None:
            raise UsageError("weights fetch: name a model with --groups (and --width, --source), or use --all")
        else:
            checkpoints = [find_checkpoint(args.groups, args.width, args.source)]
    except WeightsError as error:
        raise UsageError(f"weights fetch: {error}") from None
    bars = []

    def progress_for(checkpoint):
        bar = tqdm(desc=checkpoint.name, unit="B", unit_scale=True, disable=args.quiet)
        bars.append(bar)

        def progress(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)
        return progress

    try:
        outcomes = install_checkpoints(checkpoints, mirror=args.mirror, progress_for=progress_for,
                                       timeout=args.timeout)
    finally:
        for bar in bars:
            bar.close()
    for outcome in outcomes:  # what worked on stdout, what did not on stderr: one line per model either way
        print(outcome.line(), file=sys.stdout if outcome.usable else sys.stderr, flush=True)
    status = exit_status(outcomes)
    usable = sum(outcome.usable for outcome in outcomes)
    if len(outcomes) > 1:
        print(f"{usable} of {len(outcomes)} models installed or already there (exit status {status})")
    if any(outcome.status == INSTALLED for outcome in outcomes):
        print("the app lists the new models after a reload")
    return status


def _list(args) -> int:
    from .imagenet import CATALOGUE
    from .weights import load_all

    loaded, problems = load_all()
    for name, model in loaded.items():
        print(f"installed  {name:32s} {model.label}")
    for name, problem in problems.items():
        print(f"refused    {name:32s} {problem}")
    for name, checkpoint in CATALOGUE.items():
        if name not in loaded and name not in problems:
            print(f"available  {name:32s} {checkpoint.label}: python -m shufflenet_viz weights fetch imagenet "
                  f"--groups {checkpoint.groups} --width {checkpoint.width:g} --source {checkpoint.source}")
    return 0


def _experiment(args) -> int:
    from .data import DatasetError
    from .experiment import DEFAULT_RUNS, Recipe, run_experiment
    from .experiment_results import ExperimentError
    from .train import command_line
    from .weights import WEIGHTS_DIR

    recipe = Recipe(width=0.5, size=args.size, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                    train_images=args.train_images, test_images=args.test_images,
                    curve_images=args.curve_images, threads=args.threads,
                    data=args.data)
    runs = DEFAULT_RUNS
    if args.only:
        wanted = set(args.only)
        runs = tuple(run for run in DEFAULT_RUNS if run.name(recipe.width) in wanted)
        unknown = wanted - {run.name(recipe.width) for run in runs}
        if unknown:
            known = ", ".join(run.name(recipe.width) for run in DEFAULT_RUNS)
            raise UsageError(f"experiment: unknown configuration(s) {sorted(unknown)}; choose from {known}")
    weights_dir = Path(args.weights_dir) if args.weights_dir else WEIGHTS_DIR
    try:
        run_experiment(recipe, runs, weights_dir, Path(args.results) if args.results else None,
                       command_line(sys.argv[1:] if args.argv is None else args.argv), args.measure_steps)
    except (DatasetError, ExperimentError) as error:
        raise UsageError(f"experiment: {error}") from None
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

    experiment = commands.add_parser(
        "experiment", help="train the shuffle ablation set (paper Tables 2 and 3, 0.5x) with one recipe; resumes")
    experiment.add_argument("--data", required=True,
                            help="cifar10_jpg.tar.gz, a folder with its layout, or 'torchvision' (downloads)")
    # The defaults are the shipped set's recipe, so the plain command resumes or reproduces it.
    experiment.add_argument("--epochs", type=_positive_int, default=3)
    experiment.add_argument("--size", type=_positive_int, default=32, help="training input size (upsampled)")
    experiment.add_argument("--batch-size", type=_positive_int, default=128)
    experiment.add_argument("--lr", type=float, default=0.4, help="peak learning rate at batch 256 (scaled)")
    experiment.add_argument("--train-images", type=int, default=20_000, help="balanced subset of the training "
                            "split (0: all 50,000)")
    experiment.add_argument("--test-images", type=int, default=0, help="balanced subset of the test split "
                            "(0: all 10,000)")
    experiment.add_argument("--curve-images", type=int, default=2000, help="test images measured after every "
                            "epoch for the training curves (the final accuracy uses all test images)")
    experiment.add_argument("--threads", type=_positive_int, default=1, help="torch threads (1 is fastest on a "
                            "busy 2-core machine)")
    experiment.add_argument("--only", nargs="+", metavar="NAME", help="train only these configurations")
    experiment.add_argument("--measure-steps", type=int, default=0,
                            help="only time this many batches per configuration and record it in the results")
    experiment.add_argument("--weights-dir", help="weights folder (default: the app's)")
    experiment.add_argument("--results", help="results file (default: WEIGHTS/experiments/shuffle_ablation.json)")
    experiment.set_defaults(run=_experiment, argv=None)

    flops = commands.add_parser("flops", help="print multiply-adds and parameters per ShuffleNet unit")
    flops.add_argument("--groups", type=int, default=3, choices=(1, 2, 3, 4, 8))
    flops.add_argument("--width", type=_width, default=1.0)
    flops.add_argument("--size", type=_positive_int, default=224, help="input image side in pixels")
    flops.add_argument("--classes", type=_positive_int, default=1000, help="classifier outputs")
    flops.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    flops.set_defaults(run=_flops)

    predict = commands.add_parser("predict", help="classify image files with a shipped model")
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    predict.add_argument("--model", default="cifar10_g3", help="an installed model (see `weights list`)")
    predict.add_argument("--top", type=_positive_int, default=5)
    predict.add_argument("--json", action="store_true")
    predict.set_defaults(run=_predict)

    weights = commands.add_parser("weights", help="manage weights")
    weights_commands = weights.add_subparsers(dest="weights_command", required=True, parser_class=_Parser)
    fetch = weights_commands.add_parser(
        "fetch", help="download published ImageNet weights (the only command that downloads anything)",
        description="Download, verify (sha256/sha1), convert and install published ImageNet ShuffleNet v1 "
                    "weights into an untracked folder: the official 0.5x g=3/g=8 or osmr's g=1/g=3 models. "
                    "Each model gets one line: installed, already there (stdout), not in the mirror, failed "
                    "(stderr), with why; one that cannot be had does not stop the others.",
        epilog="exit status: 0 every model asked for is installed (now or before), 1 some are, 2 none are "
               "(or bad input).")
    fetch.add_argument("dataset", choices=("imagenet",))
    fetch.add_argument("--groups", type=int, choices=(1, 3, 8))
    fetch.add_argument("--width", type=float, default=0.5, choices=(1.0, 0.5, 0.25))
    fetch.add_argument("--source", choices=("official", "osmr"),
                       help="whose checkpoint (default: the official one where it exists, else osmr's)")
    fetch.add_argument("--all", action="store_true",
                       help="the models the app offers: official 0.5x g=3 and g=8, osmr 0.25x g=3, osmr 1x g=1 "
                            "and g=3")
    fetch.add_argument("--mirror", default=os.environ.get("SHUFFLENET_LENS_MIRROR"), metavar="DIR_OR_URL",
                       help="a folder or http(s) URL holding the published files, tried first "
                            "(default: $SHUFFLENET_LENS_MIRROR)")
    fetch.add_argument("--timeout", type=float, default=30.0, help="seconds without data before giving up")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")
    fetch.set_defaults(run=_fetch)
    listing = weights_commands.add_parser("list", help="installed, refused and fetchable models")
    listing.set_defaults(run=_list)
    return parser


# Exit statuses a shell reports for a program that a signal ended (128 + the signal's number), used when the
# program stops on its own after catching that situation.
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT)
EXIT_BROKEN_PIPE = 141  # the reader of stdout went away (SIGPIPE), e.g. `... | head -3`


def _say(message: str) -> None:
    """One line on stderr, unless stderr itself is gone (then there is no one left to tell)."""
    try:
        print(message, file=sys.stderr, flush=True)
    except OSError:
        pass


def _discard_stream(stream) -> None:
    """Point this stream's file descriptor at the null device, so that what is still buffered in it (flushed
    when Python exits) goes nowhere instead of raising BrokenPipeError again at exit."""
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (e.g. captured by a test): nothing to flush
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, descriptor)
    finally:
        os.close(null)


def _after_broken_pipe() -> int:
    _discard_stream(sys.stdout)
    try:
        sys.stderr.flush()
    except OSError:  # stderr went to the same closed pipe (`2>&1 | head`)
        _discard_stream(sys.stderr)
    return EXIT_BROKEN_PIPE


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit status: 0 done, 2 bad input (one line on stderr), 130 Ctrl-C and
    141 when the reader of stdout closed it early, as a shell reports for a program that SIGINT or SIGPIPE
    ended; those two end quietly, without a traceback."""
    try:
        try:
            args = build_parser().parse_args(argv)
            if argv is not None:
                args.argv = argv
            status = args.run(args)
        except SystemExit as done:  # --help and friends: argparse has printed, and exits
            status = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        # Flushed here, not at exit: output that fits the buffer meets a closed pipe only when it is written.
        sys.stdout.flush()
        return status
    except UsageError as error:
        _say(str(error))
        return 2
    except BrokenPipeError:
        return _after_broken_pipe()
    except KeyboardInterrupt:
        _say("interrupted")
        try:
            sys.stdout.flush()
        except OSError:  # Ctrl-C reaches the whole pipeline, so the reader may be gone already
            _discard_stream(sys.stdout)
        return EXIT_INTERRUPTED
