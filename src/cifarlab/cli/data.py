"""`cifarlab data info|download`: inspect a dataset source, fetch the official CIFAR archives."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from cifarlab import options
from cifarlab.cli.common import HelpFormatter, add_data_arguments, dataset_from_args
from cifarlab.data.download import (DATASETS, DEFAULT_TIMEOUT, MD5_ENV, OFFICIAL_BASE_URL, URL_ENV,
                                    download)
from cifarlab.options import option


@dataclass
class DownloadConfig(options.Options):
    dataset: str = option("cifar10", "which archive: cifar10 (python batches), cifar10-binary, cifar100",
                          choices=DATASETS)
    dir: Path = option(Path("data"), "folder to put the archive and the extracted folder in", metavar="D")
    url: str | None = option(None, "mirror: a full URL to the archive (ending in .tar.gz/.tgz/.tar) or a "
                                   "base URL the official file name is appended to (default: "
                                   f"${URL_ENV} if set, else {OFFICIAL_BASE_URL})", metavar="URL")
    md5: str | None = option(None, f"expected MD5 of the archive (default: ${MD5_ENV} if set, else the "
                                   "official checksum)", metavar="HEX")
    timeout: float = option(DEFAULT_TIMEOUT, "seconds to wait for the server to answer or send more data",
                            metavar="S")
    extract: bool = option(True, "extract the archive (--no-extract: keep the .tar.gz only)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    info = sub.add_parser(
        "info", formatter_class=HelpFormatter, help="describe a dataset: format, classes, counts",
        description="Describe a dataset source: format, folder layout, classes, image counts per "
                    "split and class, image size, cache status (hit/miss) and content "
                    "fingerprint. For a ROOT/<class>/<image> folder, val and test are drawn "
                    "per class with seed 0.")
    add_data_arguments(info)
    info.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    info.set_defaults(data_run=run_info)

    down = sub.add_parser(
        "download", formatter_class=HelpFormatter, help="download an official CIFAR archive",
        description="Download an official CIFAR archive, verify its MD5 and extract it safely. "
                    "An archive already present with the right MD5 is not downloaded again.")
    options.add_arguments(down, DownloadConfig)
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
    config = options.from_args(DownloadConfig, args)
    path = download(config.dataset, config.dir, url=config.url, timeout=config.timeout,
                    extract=config.extract, md5=config.md5)
    print(f"ready: {path}  (use --data {path})")
    return 0
