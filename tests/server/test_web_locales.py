"""The web app's interface text: every language ships every string English has."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

LOCALES = Path(__file__).resolve().parents[2] / "server" / "web" / "app" / "src" / "locales"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def flatten(tree: dict[str, object], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


def messages(language: str) -> dict[str, str]:
    return flatten(json.loads((LOCALES / f"{language}.json").read_text(encoding="utf-8")))


@pytest.mark.parametrize("language", ["sq", "sr"])
def test_translation_has_every_string_with_the_same_placeholders(language: str) -> None:
    english = messages("en")
    translated = messages(language)
    assert sorted(set(english) - set(translated)) == []
    assert sorted(set(translated) - set(english)) == []
    for key, text in english.items():
        assert set(PLACEHOLDER.findall(translated[key])) == set(PLACEHOLDER.findall(text)), key
        assert translated[key].strip(), key


def test_every_key_the_app_uses_is_in_english() -> None:
    english = messages("en")
    sources = (LOCALES.parent).rglob("*.vue")
    used = {
        key
        for source in sources
        for key in re.findall(r"""\bt\(\s*["']([\w.]+)["']""", source.read_text(encoding="utf-8"))
    }
    assert used, "no t('...') calls found: the pattern no longer matches the sources"
    assert sorted(used - set(english)) == []
