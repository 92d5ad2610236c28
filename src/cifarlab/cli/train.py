"""`cifarlab train`: dataset in, model file out (resumable, logged)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cifarlab.cli.common import add_data_arguments
from cifarlab.training.presets import PRESETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    parser.add_argument("--model", default="fast", choices=sorted(PRESETS),
                        help="architecture + recipe preset: seed (baseline) or fast")
    parser.add_argument("--out", type=Path, default=None,
                        help="run folder for model.keras, checkpoints and logs (default runs/MODEL)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last finished epoch in --out (rerunning into the "
                             "same --out resumes too; this flag insists there is a checkpoint)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same weights on CPU)")
    parser.add_argument("--strategy", default="auto", choices=["auto", "one", "mirrored", "multiworker"],
                        help="tf.distribute strategy: auto = multiworker if TF_CONFIG is set, "
                             "mirrored with several GPUs, else one device")
    parser.add_argument("--limit-train", type=int, default=None, metavar="N",
                        help="train on a seeded random subset of N training images")
    parser.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                        help="compute precision: auto = bfloat16 on CPUs with native BF16 (AVX512-BF16/AMX), "
                             "float16 on GPUs, else float32; the saved model is float32 either way")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    recipe = parser.add_argument_group("recipe (default: the preset's value, shown as seed / fast)")
    for name, kind, text in (
        ("epochs", int, "epochs (seed: maximum; early stopping may end sooner)"),
        ("batch-size", int, "global batch size"),
        ("lr", float, "(peak) learning rate, for the mean loss of one batch"),
        ("momentum", float, "SGD Nesterov momentum"),
        ("bias-scaler", float, "SGD: learning-rate multiplier of BatchNorm biases"),
        ("lookahead-steps", int, "SGD: reset weights to their running average every N steps (0 = off)"),
        ("label-smoothing", float, "label smoothing"),
        ("translate", int, "random translation in pixels (0 = off)"),
        ("cutout", int, "side in pixels of a square painted over each training image with the mean colour (0 = off)"),
        ("val-fraction", float, "fraction of train held out as validation (if the source has no val split)"),
        ("weight-decay", float, "decoupled weight decay: each step shrinks weights by lr x this"),
        ("warmup-epochs", float, "warm-up epochs (warmup-cosine schedule)"),
    ):
        key = name.replace("-", "_")
        recipe.add_argument(f"--{name}", type=kind, default=None,
                            help=f"{text} [{PRESETS['seed'].get(key, '-')} / {PRESETS['fast'].get(key, '-')}]")
    recipe.add_argument("--schedule", default=None, choices=["triangle", "warmup-cosine", "constant", "plateau"],
                        help="learning-rate schedule [plateau / triangle]")
    recipe.add_argument("--widths", default=None, type=lambda v: tuple(int(w) for w in v.split(",")),
                        metavar="A,B,C", help="fast: channels of its three conv blocks [- / 64,256,256]")
    recipe.add_argument("--calibrate", default=None, action=argparse.BooleanOptionalAction,
                        help="fit a softmax temperature on the validation split [off / on]")
    recipe.add_argument("--flip", default=None, action=argparse.BooleanOptionalAction,
                        help="horizontal flips: each image mirrored in every other epoch, "
                             "starting from a random half [off / on]")


def run(args: argparse.Namespace) -> int:
    from cifarlab.training.train import TrainConfig, train

    config = TrainConfig(
        data=args.data, model=args.model, out=args.out, seed=args.seed, resume=args.resume,
        strategy=args.strategy, precision=args.precision, image_size=args.image_size, labels=args.labels,
        cache_dir=args.cache_dir, use_cache=not args.no_cache, limit_train=args.limit_train,
        verbose=0 if args.quiet else 1, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        label_smoothing=args.label_smoothing, flip=args.flip, translate=args.translate, cutout=args.cutout,
        val_fraction=args.val_fraction, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
        widths=args.widths, calibrate=args.calibrate, momentum=args.momentum, bias_scaler=args.bias_scaler,
        lookahead_steps=args.lookahead_steps, schedule=args.schedule,
    )
    train(config)
    return 0
