"""The dashboard's colours meet WCAG 2.1 AA: text contrasts at least 4.5:1 with its background."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import modelfleet.web.ui

CSS = (Path(modelfleet.web.ui.__file__).parent / "static" / "ui.css").read_text()
COLOURS = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{3,6})", CSS))


def luminance(hex_colour: str) -> float:
    """WCAG 2.1 relative luminance of an sRGB colour."""
    digits = hex_colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def colour(name: str) -> str:
    return name if name.startswith("#") else COLOURS[name]


@pytest.mark.parametrize(
    ("text", "background"),
    [
        ("fg", "bg"),
        ("muted", "bg"),
        ("link", "bg"),
        ("ok", "ok-bg"),
        ("warn", "warn-bg"),
        ("bad", "bad-bg"),
        ("none", "none-bg"),
        ("#fff", "#102a43"),  # the top bar
        ("#fff", "#0b5cad"),  # buttons
        ("#fff", "bad"),  # danger buttons
    ],
)
def test_text_contrasts_at_least_4_5_to_1(text: str, background: str) -> None:
    assert contrast(colour(text), colour(background)) >= 4.5


def test_the_luminance_formula_gives_black_on_white_21_to_1() -> None:
    assert contrast("#000", "#fff") == pytest.approx(21.0)
