"""`aurelius` argument and settings errors (exit 2, before any AWS call) and its text output helpers."""

from __future__ import annotations

import pytest

from aurelius import cli
from aurelius.formatting import short, size, table


def no_aws(service, region):
    raise AssertionError(f"bad arguments must stop before any AWS call (asked for {service})")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["deploy", "--environment", "local"],  # neither --version-id nor --latest
        ["deploy", "--environment", "local", "--version-id", "v1", "--latest"],
        ["deploy", "--version-id", "v1"],  # no environment
        ["history"],
        ["history", "--environment", "local", "--limit", "many"],
        ["history", "--environment", "local", "--limit", "-1"],
        ["status", "--bogus"],
        ["doctor"],  # no environment
        ["doctor", "--environment", "local", "--bogus"],
    ],
)
def test_bad_arguments_exit_2_without_calling_aws(argv, capsys):
    # Given / When
    code = cli.main(argv, clients=no_aws)
    # Then argparse (or the command) explains on stderr
    assert code == 2
    assert capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--environment", "staging"],
        ["history", "--environment", "staging"],
        ["deploy", "--environment", "staging", "--latest"],
        ["doctor", "--environment", "staging"],
    ],
)
def test_unknown_environment_exits_2_naming_the_known_ones(argv, capsys):
    code = cli.main(argv, clients=no_aws)
    err = capsys.readouterr().err
    assert code == 2
    assert "environments.staging: unknown environment" in err and "local" in err


def test_unreadable_settings_file_exits_2(tmp_path, capsys):
    code = cli.main(["status", "--settings", str(tmp_path / "nope.yml")], clients=no_aws)
    assert code == 2 and "file not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["--help"], ["status", "--help"], ["deploy", "--help"], ["history", "--help"], ["doctor", "--help"]]
)
def test_help_exits_0_and_describes_exit_codes(argv, capsys):
    assert cli.main(argv, clients=no_aws) == 0
    assert "exit" in capsys.readouterr().out.lower()


def test_table_aligns_columns_and_trims_trailing_space():
    text = table(["A", "LONGER"], [["xyz", "1"], ["q", ""]])
    assert text.splitlines() == ["A    LONGER", "xyz  1", "q"]


@pytest.mark.parametrize(
    "n, shown", [(None, "-"), (0, "0 B"), (1023, "1023 B"), (2048, "2.0 KiB"), (5 * 1024**2, "5.0 MiB")]
)
def test_sizes_are_shown_in_binary_units(n, shown):
    assert size(n) == shown


def test_long_version_ids_are_shortened_in_tables_only_past_the_width():
    assert short("3HL4kqtJlcpXroDTDmJ") == "3HL4kqtJlcpX…"
    assert short("abc") == "abc"


def test_the_management_scripts_share_the_exit_codes_without_loading_the_cli():
    # Given a fresh interpreter (what `python create-cluster.py` is)
    import subprocess
    import sys

    from tests.helpers import REPO

    # When the scripts' shared module is imported
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, aurelius.scripts.management as m; "
            "print(m.EXIT_USAGE, sorted(n for n in sys.modules if n.startswith('aurelius.cli')))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )

    # Then it has the exit-code contract, and no module of the CLI came with it
    assert loaded.stdout.strip() == "2 []"
