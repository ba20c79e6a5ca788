"""Command line: `python -m training train ...` and `python -m training synth-sessions ...`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from training.errors import TrainingError

log = logging.getLogger("training")


def _layers(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected units like 32,16, got {text!r}") from None


def _class_weight(text: str) -> str | dict[str, float]:
    if text in {"none", "balanced"}:
        return text
    try:
        pairs = dict(part.split(":") for part in text.split(","))
        return {k.strip(): float(v) for k, v in pairs.items()}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected none, balanced or 0:1,1:5, got {text!r}"
        ) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train purchase-propensity models and export them as ONNX bundles.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train",
        help="train on a session table and write a bundle",
        description="Load a table, check it against its spec, train the network and two "
        "baselines, evaluate on held-out data, export one ONNX graph and write a bundle "
        "(model.onnx, card.json, report.md/json, plots).",
    )
    t.add_argument(
        "--spec",
        required=True,
        help="dataset spec (TOML path, or a shipped name such as uci_online_shoppers)",
    )
    t.add_argument("--data", required=True, type=Path, help="CSV or Parquet file")
    t.add_argument("--out", required=True, type=Path, help="bundle directory, e.g. models/NAME")
    t.add_argument("--config", type=Path, help="TOML file of hyperparameters ([train] table)")
    t.add_argument("--name", help="model name (default: the --out directory's name)")
    t.add_argument("--model-version", help="version (default: first 12 hex of model.onnx's sha256)")
    t.add_argument("--cv", type=int, metavar="K", help="also report stratified K-fold CV")
    g = t.add_argument_group("hyperparameters (override the config file)")
    g.add_argument("--layers", type=_layers, help="hidden units, e.g. 32,16")
    g.add_argument("--dropout", type=float)
    g.add_argument("--l2", type=float, help="L2 penalty on hidden-layer weights")
    g.add_argument("--learning-rate", type=float)
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--class-weight", type=_class_weight, help="none, balanced or 0:1,1:5")
    g.add_argument(
        "--early-stopping",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="stop when validation AUC stops improving",
    )
    g.add_argument("--patience", type=int)
    g.add_argument("--validation-fraction", type=float)
    g.add_argument("--test-fraction", type=float)
    g.add_argument("--seed", type=int)

    r = sub.add_parser(
        "train-recs",
        help="train a (user, item) model on a purchase log and write a bundle with its catalogue",
        description="Clean a purchase log, cut (user, item) pairs at several cutoffs, train the "
        "network on the earlier ones, evaluate on the last as a classifier and as a ranking of "
        "the whole catalogue beside popularity baselines, and write a bundle with the catalogue "
        "and the user and user-item features as of the end of the log.",
    )
    r.add_argument(
        "--spec",
        required=True,
        help="log spec (TOML path or a shipped name, e.g. storefront): column names and windows",
    )
    r.add_argument("--events", required=True, type=Path, help="purchase log, CSV or Parquet")
    r.add_argument("--items", type=Path, help="item table, CSV or Parquet (category, price)")
    r.add_argument("--out", required=True, type=Path, help="bundle directory, e.g. models/NAME")
    r.add_argument("--config", type=Path, help="TOML file of hyperparameters ([train] table)")
    r.add_argument("--name", help="model name (default: the --out directory's name)")
    r.add_argument("--model-version", help="version (default: first 12 hex of the ONNX sha256)")
    r.add_argument(
        "--truth",
        type=Path,
        help="storefront.json of a synthetic store: also "
        "report the ranking by its true purchase probabilities",
    )
    for role in ("user", "item", "timestamp", "quantity", "price", "event"):
        r.add_argument(
            f"--{role}-column",
            dest=f"{role}_column",
            metavar="NAME",
            help=f"the log's {role} column (overrides the spec)",
        )
    for flag in ("epochs", "batch_size", "seed"):
        r.add_argument(f"--{flag.replace('_', '-')}", type=int, dest=flag)

    st = sub.add_parser("synth-storefront", help="write a synthetic store's purchase log and items")
    st.add_argument("--users", type=_positive, default=2000)
    st.add_argument("--items", type=_positive, default=400)
    st.add_argument("--days", type=_positive, default=180)
    st.add_argument("--seed", type=int, default=0)
    st.add_argument(
        "--out-dir",
        required=True,
        type=Path,
        help="writes purchases.csv, items.csv and storefront.json",
    )

    s = sub.add_parser("synth-sessions", help="write a synthetic session table (seeded)")
    s.add_argument("--rows", type=_positive, default=50_000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, type=Path, help=".csv or .parquet")
    return parser


_OVERRIDES = (
    "layers",
    "dropout",
    "l2",
    "learning_rate",
    "epochs",
    "batch_size",
    "class_weight",
    "early_stopping",
    "patience",
    "validation_fraction",
    "test_fraction",
    "seed",
)


def _train(args: argparse.Namespace) -> None:
    from training.bundle import check_destination
    from training.config import load_config
    from training.data import load_dataset
    from training.spec import load_spec
    from training.train import train

    check_destination(args.out, args.name)
    config = load_config(args.config, {k: getattr(args, k) for k in _OVERRIDES})
    spec = load_spec(args.spec)
    log.info("loading %s against spec %s", args.data, spec.name)
    dataset = load_dataset(args.data, spec)
    card = train(
        dataset,
        spec,
        config,
        args.out,
        name=args.name,
        version=args.model_version,
        cv_folds=args.cv,
    ).card
    m = card.metrics
    print(
        f"{card.name} {card.version}: test roc_auc={m['roc_auc']:.4f} pr_auc={m['pr_auc']:.4f} "
        f"f1={m['f1']:.4f} at threshold {card.threshold:.3f} -> {args.out}"
    )


def _train_recs(args: argparse.Namespace) -> None:
    from training.bundle import check_destination
    from training.config import load_config
    from training.events import load_log_spec, load_purchase_log
    from training.recommender import train_recommender
    from training.storefront import load_truth

    check_destination(args.out, args.name)
    config = load_config(
        args.config, {k: getattr(args, k) for k in ("epochs", "batch_size", "seed")}
    )
    columns = {
        role: getattr(args, f"{role}_column")
        for role in ("user", "item", "timestamp", "quantity", "price", "event")
    }
    spec = load_log_spec(args.spec, columns)
    log.info("loading %s against spec %s", args.events, spec.name)
    plog = load_purchase_log(args.events, spec, args.items)
    truth = load_truth(args.truth) if args.truth else None
    trained = train_recommender(
        plog, spec, config, args.out, name=args.name, version=args.model_version, truth=truth
    )
    card = trained.card
    ranking = card.ranking_metrics or {}
    shown = "  ".join(
        f"{n}: ndcg@10={m['ndcg@10']:.4f} hit_rate@10={m['hit_rate@10']:.4f}"
        for n, m in ranking.items()
    )
    print(f"{card.name} {card.version}: {shown} -> {args.out}")


def _synth_storefront(args: argparse.Namespace) -> None:
    from training.storefront import write_storefront

    paths = write_storefront(args.out_dir, args.users, args.items, args.days, args.seed)
    print(f"wrote {', '.join(str(p) for p in paths)}")


def _synth_sessions(args: argparse.Namespace) -> None:
    from training.synthetic import generate_sessions

    frame = generate_sessions(args.rows, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix in {".parquet", ".pq"}:
        frame.to_parquet(args.out, index=False)
    else:
        frame.to_csv(args.out, index=False)
    print(f"wrote {len(frame)} sessions ({frame['purchased'].mean():.1%} purchased) to {args.out}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # TensorFlow's C++ logging would drown the progress lines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("tensorflow", "absl", "tf2onnx", "h5py", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    commands: dict[str, Any] = {
        "train": _train,
        "train-recs": _train_recs,
        "synth-storefront": _synth_storefront,
        "synth-sessions": _synth_sessions,
    }
    try:
        commands[args.command](args)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file that cannot be read or written: its path and the reason
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
