"""One option pattern for every command: did-you-mean for mistyped values and names, one-line
usage errors with exit code 2, every default in --help, one validation step, quiet start-up."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import cv2
import numpy as np
import pytest

from cifarlab.cli.data import DownloadConfig
from cifarlab.cli.main import configure_logging, main
from cifarlab.data.source import DataSource
from cifarlab.errors import CifarlabError
from cifarlab.export.core import ExportConfig
from cifarlab.live.config import LiveConfig
from cifarlab.options import flag_name
from cifarlab.predict.core import PredictConfig

ROOT = Path(__file__).resolve().parents[1]


def usage_error(capsys, *argv: str) -> str:
    """The one stderr line of a command line argparse rejects (exit code 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("argv, prog, flag, typed, meant", [
    (["predict", "x.png", "--format", "jsn"], "cifarlab predict", "--format", "jsn", "json"),
    (["predict", "x.png", "--backend", "kears"], "cifarlab predict", "--backend", "kears", "keras"),
    (["export", "--format", "litrt"], "cifarlab export", "--format", "litrt", "litert"),
    (["export", "--format", "onnx", "--quantize", "dinamic"], "cifarlab export", "--quantize",
     "dinamic", "dynamic"),
    (["live", "--backend", "onx"], "cifarlab live", "--backend", "onx", "onnx"),
    (["data", "info", "--data", "d", "--labels", "fin"], "cifarlab data info", "--labels", "fin", "fine"),
    (["data", "download", "--dataset", "cifar100x"], "cifarlab data download", "--dataset",
     "cifar100x", "cifar100"),
])
def test_mistyped_choice_says_did_you_mean(capsys, argv, prog, flag, typed, meant):
    line = usage_error(capsys, *argv)
    assert line.startswith(f"{prog}: error: {flag} '{typed}' is not a choice; "
                           f"did you mean '{meant}'? choose from "), line


@pytest.mark.parametrize("argv, typed, meant", [
    (["predict", "x.png", "--top_k", "3"], "--top_k", "--top-k"),
    (["predict", "x.png", "--formt", "json"], "--formt", "--format"),
    (["predict", "x.png", "--formt=json"], "--formt", "--format"),
    (["export", "--format", "onnx", "--model", "none.keras", "--sampls", "8"], "--sampls", "--samples"),
    (["live", "--no-windw"], "--no-windw", "--no-window"),
    (["data", "info", "--data", "d", "--jsn"], "--jsn", "--json"),
    (["data", "download", "--no-extact"], "--no-extact", "--no-extract"),
])
def test_mistyped_option_name_suggests_the_right_one(capsys, argv, typed, meant):
    line = usage_error(capsys, *argv)
    assert line.endswith(f"error: unrecognized option {typed}; did you mean {meant}?"), line


def test_mistyped_command_says_did_you_mean(capsys):
    assert usage_error(capsys, "predit", "x.png").startswith(
        "cifarlab: error: COMMAND 'predit' is not a choice; did you mean 'predict'? choose from data,")
    assert usage_error(capsys, "data", "inof").startswith(
        "cifarlab data: error: ACTION 'inof' is not a choice; did you mean 'info'?")


def test_unknown_option_without_a_close_name_points_to_help(capsys):
    line = usage_error(capsys, "predict", "x.png", "--zzzzzz")
    assert line == "cifarlab predict: error: unrecognized option --zzzzzz; see cifarlab predict --help"


@pytest.mark.parametrize("argv, missing, choices", [
    ([], "COMMAND", "data, train, evaluate, live, predict, export, openset, calibrate"),
    (["data"], "ACTION", "info, download"),
    (["data", "info"], "--data", None),
    (["predict"], "PATH", None),
    (["export"], "--format", "litert, onnx, savedmodel"),
    (["openset"], "--data", None),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_a_missing_required_argument_reads_the_same_in_every_command(capsys, argv, missing, choices):
    prog = " ".join(["cifarlab", *argv])
    detail = f": one of {choices}" if choices else ""
    expected = f"{prog}: error: {missing} is required{detail} (see {prog} --help)"
    assert usage_error(capsys, *argv) == expected


def test_train_and_evaluate_need_no_data_option(capsys):
    """Their --data defaults to the official CIFAR-10 archive (tests/test_data_download.py)."""
    for command in ("train", "evaluate"):
        assert "(default: cifar10)" in help_entries(capsys, command)["--data"]


def test_options_by_keyword_name_the_unknown_one():
    from cifarlab.options import from_values

    assert from_values(DownloadConfig, "download", {"dataset": "cifar100"}).dataset == "cifar100"
    with pytest.raises(CifarlabError, match=r"^download: unknown option 'timout'; did you mean "
                                            r"'timeout'\? the options are the command's flags"):
        from_values(DownloadConfig, "download", {"timout": 3})
    with pytest.raises(CifarlabError, match="^predict: paths is required$"):
        from_values(PredictConfig, "predict", {})


def help_entries(capsys, *argv: str) -> dict[str, str]:
    """{option string: its help text, whitespace normalised} from `argv --help`."""
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    entries: dict[str, list[str]] = {}
    names: list[str] = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("  -"):  # "  --window, --no-window    help..." or "  --top-k K  help..."
            head, *help = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            names = [part.split()[0] for part in head.split(", ")]
            for name in names:
                entries[name] = list(help)
        elif line.startswith("    ") and names:
            for name in names:
                entries[name].append(line)
        else:
            names = []
    return {flag: " ".join(" ".join(lines).split()) for flag, lines in entries.items()}


def shown_default(value) -> str | None:
    """How --help shows a default, or None where its help says what happens instead."""
    if value is MISSING or value is None or value is False or value == ():
        return None
    return str(value)


@pytest.mark.parametrize("argv, config", [
    (["live"], LiveConfig), (["predict"], PredictConfig), (["export"], ExportConfig),
    (["data", "info"], DataSource), (["data", "download"], DownloadConfig),
])
def test_help_lists_every_option_with_its_default(capsys, argv, config):
    entries = help_entries(capsys, *argv)
    for f in fields(config):
        if not f.metadata.get("cli") or f.metadata.get("positional"):
            continue
        flag = f"--{flag_name(f)}"
        assert flag in entries, (flag, sorted(entries))
        assert f.metadata["help"].split()[0] in entries[flag], (flag, entries[flag])
        required = config is DataSource and f.name == "data"  # `data info` requires --data
        default = None if required else shown_default(f.default)
        if default is not None:
            assert f"(default: {default})" in entries[flag], (flag, entries[flag])
    for flag in ("--debug", "--quiet", "--verbose"):
        assert flag in entries


def test_live_keeps_its_flag_names(capsys):
    entries = help_entries(capsys, "live")
    for flag in ("--model", "--source", "--roi", "--roi-size", "--no-window", "--record", "--jsonl",
                 "--smoothing", "--threshold", "--top-k", "--mirror", "--loop", "--max-frames",
                 "--width", "--height", "--threads", "--snapshot-dir", "--data", "--open-timeout",
                 "--read-timeout", "--reconnect-timeout", "--collect", "--classes",
                 "--train-command", "--backend"):
        assert flag in entries, flag
    assert "(default: 0.5)" in entries["--roi-size"] and "(default: 3)" in entries["--top-k"]
    assert "(default: 15.0)" in entries["--reconnect-timeout"]


def test_roi_and_roi_size_exclude_each_other(capsys):
    line = usage_error(capsys, "live", "--roi", "0,0,64,64", "--roi-size", "0.3")
    assert line == "cifarlab live: error: argument --roi-size: not allowed with argument --roi"


@pytest.mark.parametrize("changes, flag", [
    (dict(top_k=0), "--top-k must be at least 1, got 0"),
    (dict(roi_size=2.0), "--roi-size must be in [0.05, 1.0], got 2.0"),
    (dict(smoothing=1.0), "--smoothing must be in [0.0, 1.0), got 1.0"),
    (dict(threshold=-0.1), "--threshold must be in [0.0, 1.0], got -0.1"),
    (dict(backend="kears"), "--backend 'kears' is not a choice; did you mean 'keras'?"),
    (dict(roi=(1, 2, 3)), "--roi must be x,y,w,h in pixels"),
    (dict(roi=(0, 0, 4, 64)), "--roi must be x,y,w,h in pixels"),
    (dict(max_frames=0), "--max-frames must be at least 1, got 0"),
    (dict(threads=0), "--threads must be at least 1, got 0"),
    (dict(read_timeout=-1.0), "--read-timeout must be at least 0, got -1.0"),
    (dict(width=640), "give --width and --height together"),
    (dict(train_command=()), "--train-command is empty"),
])
def test_live_config_rejects_bad_values_naming_the_flag(changes, flag):
    with pytest.raises(CifarlabError) as info:
        LiveConfig(**changes)
    assert str(info.value).startswith(flag), str(info.value)


def test_live_config_parses_like_the_command_line():
    config = LiveConfig(roi=(10, 20, 100, 50), classes=("mug", "phone"), collect=Path("d"))
    assert config.roi == (10, 20, 100, 50) and config.window and config.source == "auto"
    assert LiveConfig(data="some/folder").source == "demo"


def test_predict_and_export_validate_once_in_the_config():
    with pytest.raises(CifarlabError, match="--batch-size must be at least 1, got 0"):
        PredictConfig(paths=["a.png"], batch_size=0)
    with pytest.raises(CifarlabError, match="no input given"):
        PredictConfig(paths=[])
    with pytest.raises(CifarlabError, match="--explain-class needs --explain"):
        PredictConfig(paths=["a.png"], explain_class="cat")
    with pytest.raises(CifarlabError, match="only available with --format litert"):
        ExportConfig(format="onnx", quantize="dynamic")
    with pytest.raises(CifarlabError, match="--samples must be at least 1, got 0"):
        ExportConfig(format="litert", samples=0)
    with pytest.raises(CifarlabError, match="must end in .onnx"):
        ExportConfig(format="onnx", out=Path("m.tflite"))


def test_bad_value_from_the_command_line_is_one_line_exit_2(capsys):
    assert main(["predict", "x.png", "--top-k", "0"]) == 2
    assert capsys.readouterr().err == "cifarlab predict: error: --top-k must be at least 1, got 0\n"
    assert main(["live", "--roi", "1,2,3", "--no-window"]) == 2
    assert "cifarlab live: error: --roi must be x,y,w,h" in capsys.readouterr().err


@pytest.mark.parametrize("quiet, verbose, level", [
    (False, False, logging.INFO), (True, False, logging.WARNING), (False, True, logging.DEBUG),
])
def test_quiet_and_verbose_set_the_root_level(quiet, verbose, level, capsys):
    configure_logging(quiet=quiet, verbose=verbose)
    try:
        assert logging.getLogger().level == level
        logging.getLogger("cifarlab.test").info("status line")
        logging.getLogger("cifarlab.test").warning("careful")
        logging.getLogger("somelibrary").info("library chatter")
        out, err = capsys.readouterr()
        assert out == ("" if quiet else "status line\n")
        assert "warning: careful\n" in err
        assert ("library chatter" in err + out) == verbose
    finally:
        configure_logging()


def test_quiet_and_verbose_are_options_of_every_command(capsys):
    for argv in (["predict"], ["export"], ["live"], ["data", "info"], ["data", "download"],
                 ["evaluate"], ["train"]):
        entries = help_entries(capsys, *argv)
        assert "--quiet" in entries and "--debug" in entries, argv


@pytest.mark.slow
def test_predict_start_up_is_quiet(tmp_path):
    """No absl trackable_obj warning, no XNNPACK INFO line: stderr of a normal run is empty."""
    for i in range(3):
        image = np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / f"{i}.png"), image)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-m", "cifarlab.cli.main", "predict", str(tmp_path),
                           "--model", str(ROOT / "models" / "cifar10-fast.keras"), "--backend",
                           "litert"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    assert len(proc.stdout.splitlines()) == 3
    verbose = subprocess.run([sys.executable, "-m", "cifarlab.cli.main", "predict", str(tmp_path),
                              "--model", str(ROOT / "models" / "cifar10-fast.keras"), "--backend",
                              "litert", "--verbose"], capture_output=True, text=True, timeout=300,
                             env=env)
    assert verbose.returncode == 0 and "XNNPACK" in verbose.stderr, verbose.stderr
