from __future__ import annotations

import pytest

from forms.xml import XmlError, parse_xml


def test_parses_plain_xml_without_comments() -> None:
    root = parse_xml(b"<data id='f'><!-- note --><q>1</q></data>")
    assert [child.tag for child in root] == ["q"]


def test_utf16_document_is_read() -> None:
    root = parse_xml("<?xml version='1.0' encoding='UTF-16'?><data>Ç</data>".encode("utf-16"))
    assert root.text == "Ç"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_doctype_is_rejected_in_any_encoding(encoding: str) -> None:
    xml = f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE d [<!ENTITY e "x">]><d>&e;</d>'
    with pytest.raises(XmlError, match="DOCTYPE not allowed"):
        parse_xml(xml.encode(encoding))


def test_syntax_error_gives_line_number() -> None:
    with pytest.raises(XmlError, match=r"not well-formed XML \(line 3: ") as caught:
        parse_xml(b"<a>\n<b>\n</a>")
    assert caught.value.reason.startswith("is not well-formed XML")
