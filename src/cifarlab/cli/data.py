"""`cifarlab data info|download`: inspect a dataset source, fetch the official CIFAR archives."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cifarlab.cli.common import add_data_arguments, dataset_from_args

FORMATTER = argparse.ArgumentDefaultsHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    info = sub.add_parser(
        "info", formatter_class=FORMATTER, help="describe a dataset: format, classes, counts",
        description="Describe a dataset source: format, folder layout, classes, image counts per "
                    "split and class, image size, cache status (hit/miss) and content "
                    "fingerprint. For a ROOT/<class>/<image> folder, val and test are drawn "
                    "per class with seed 0.")
    add_data_arguments(info)
    info.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    info.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                      help="show full tracebacks on errors")
    info.set_defaults(data_run=run_info)

    from cifarlab.data.download import DATASETS, DEFAULT_TIMEOUT, OFFICIAL_BASE_URL, URL_ENV

    down = sub.add_parser(
        "download", formatter_class=FORMATTER, help="download an official CIFAR archive",
        description="Download an official CIFAR archive, verify its MD5 and extract it safely. "
                    "An archive already present with the right MD5 is not downloaded again.")
    down.add_argument("--dataset", choices=list(DATASETS), default="cifar10",
                      help="which archive: cifar10 (python batches), cifar10-binary, cifar100")
    down.add_argument("--dir", type=Path, default=Path("data"), metavar="D",
                      help="folder to put the archive and the extracted folder in")
    down.add_argument("--url", default=None, metavar="URL",
                      help="mirror: a full URL to the archive (ending in .tar.gz/.tgz/.tar) or a "
                           "base URL the official file name is appended to; None means "
                           f"${URL_ENV} if set, else {OFFICIAL_BASE_URL}")
    down.add_argument("--md5", default=None, metavar="HEX",
                      help="expected MD5 of the archive; None means the official checksum")
    down.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                      help="seconds to wait for the server to answer or send more data")
    down.add_argument("--no-extract", action="store_true",
                      help="keep the .tar.gz only, do not extract it")
    down.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                      help="show full tracebacks on errors")
    down.set_defaults(data_run=run_download)


def run(args: argparse.Namespace) -> int:
    return args.data_run(args)


def describe(data) -> dict:
    counts = data.counts()
    return {
        "source": data.source,
        "format": data.format,
        "layout": data.layout,
        "split_info": data.split_info,
        "classes": data.class_names,
        "num_classes": data.num_classes,
        "image_size": list(data.image_size),
        "splits": {name: sum(per_class.values()) for name, per_class in counts.items()},
        "counts": counts,
        "cache": data.cache,
        "fingerprint": data.fingerprint,
    }


def describe_layout(layout: str, split_info: dict) -> str:
    """'class-folders (ROOT/<class>/<image>); val/test drawn per class ...' for `data info`."""
    from cifarlab.data import LAYOUT_PATTERNS

    text = f"{layout} ({LAYOUT_PATTERNS.get(layout, layout)})"
    if split_info.get("method") == "seeded":
        text += (f"; val/test drawn per class with seed {split_info['seed']}: "
                 f"{split_info['val_fraction']:.0%} each, at least 1")
    elif split_info.get("method") == "record":
        text += (f"; splits from a split record, {split_info['added_to_train']} new files "
                 f"added to train, {split_info['missing']} recorded files missing")
    return text


def run_info(args: argparse.Namespace) -> int:
    info = describe(dataset_from_args(args))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    height, width = info["image_size"]
    print(f"source:      {info['source']}")
    print(f"format:      {info['format']}")
    if info["layout"]:
        print(f"layout:      {describe_layout(info['layout'], info['split_info'])}")
    print("splits:      " + ", ".join(f"{name} {n}" for name, n in info["splits"].items()))
    print(f"image size:  {height}x{width}")
    print(f"classes:     {info['num_classes']}")
    print(f"cache:       {info['cache']}")
    print(f"fingerprint: {info['fingerprint']}")
    splits = list(info["counts"])
    name_width = max(len("class"), *(len(c) for c in info["classes"]))
    print()
    print(f"{'class':<{name_width}}  " + "  ".join(f"{s:>7}" for s in splits))
    for cls in info["classes"]:
        print(f"{cls:<{name_width}}  " + "  ".join(f"{info['counts'][s][cls]:>7}" for s in splits))
    print(f"{'total':<{name_width}}  " + "  ".join(f"{info['splits'][s]:>7}" for s in splits))
    return 0


def run_download(args: argparse.Namespace) -> int:
    from cifarlab.data.download import download

    path = download(args.dataset, args.dir, url=args.url, timeout=args.timeout,
                    extract=not args.no_extract, md5=args.md5)
    print(f"ready: {path}  (use --data {path})")
    return 0
