"""The CLI run in-process, as the tests of this folder drive it."""

from __future__ import annotations

import pytest

from modelfleet.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """`modelfleet ARGS`'s standard output; fails the test, with its stderr, unless it exits 0."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(list(args))
    captured = capsys.readouterr()
    assert info.value.code in (0, None), captured.err
    return captured.out
