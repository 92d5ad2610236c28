"""`cifarlab evaluate`: not available yet (its issue is in progress)."""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print("cifarlab evaluate: not available yet")
    return 2
