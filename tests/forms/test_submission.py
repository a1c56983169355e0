from __future__ import annotations

import contextlib
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from forms.submission import SubmissionError, binary_values, parse_submission, with_repeats

HOUSEHOLD = b"""<?xml version='1.0' ?>
<data id="household" version="3" xmlns:jr="http://openrosa.org/javarosa"
      xmlns:orx="http://openrosa.org/xforms">
  <village>Shkoder</village>
  <household>
    <member><age>34</age><name>Ana</name></member>
    <member><age>8</age><name>Eri</name></member>
    <location>42.06 19.51 10 5</location>
  </household>
  <photo>1712345.jpg</photo>
  <empty/>
  <meta>
    <instanceID>uuid:5b7a4c4a-1f0a-4a6e-9d1c-1a2b3c4d5e6f</instanceID>
    <instanceName>Shkoder household</instanceName>
  </meta>
</data>
"""


def test_groups_become_dicts_and_repeats_lists() -> None:
    parsed = parse_submission(HOUSEHOLD)
    assert (parsed.form_id, parsed.version) == ("household", "3")
    assert parsed.instance_id == "uuid:5b7a4c4a-1f0a-4a6e-9d1c-1a2b3c4d5e6f"
    assert parsed.instance_name == "Shkoder household"
    assert parsed.deprecated_id is None
    assert not parsed.encrypted
    household = parsed.record["household"]
    assert household == {
        "member": [{"age": "34", "name": "Ana"}, {"age": "8", "name": "Eri"}],
        "location": "42.06 19.51 10 5",
    }
    assert parsed.record["village"] == "Shkoder"
    assert parsed.record["empty"] == ""


def test_single_repeat_instance_is_a_list_when_path_is_known() -> None:
    xml = (
        b"<data id='f'><member><age>3</age></member><member2><age>4</age></member2>"
        b"<meta><instanceID>uuid:1</instanceID></meta></data>"
    )
    parsed = parse_submission(xml, repeat_paths=frozenset({"/member"}))
    assert parsed.record["member"] == [{"age": "3"}]
    assert parsed.record["member2"] == {"age": "4"}


def test_empty_repeat_instance_is_an_empty_dict() -> None:
    xml = b"<data id='f'><member/><meta><instanceID>uuid:1</instanceID></meta></data>"
    assert parse_submission(xml, frozenset({"/member"})).record["member"] == [{}]


def test_edit_carries_deprecated_id_in_orx_meta() -> None:
    xml = b"""<data xmlns:orx="http://openrosa.org/xforms" id="f">
      <q>new</q>
      <orx:meta><orx:instanceID>uuid:2</orx:instanceID>
      <orx:deprecatedID>uuid:1</orx:deprecatedID></orx:meta></data>"""
    parsed = parse_submission(xml)
    assert (parsed.instance_id, parsed.deprecated_id) == ("uuid:2", "uuid:1")


def test_encrypted_manifest_lists_encrypted_parts() -> None:
    xml = b"""<data encrypted="yes" id="secret" version="2"
        xmlns="http://www.opendatakit.org/xforms/encrypted" xmlns:orx="http://openrosa.org/xforms">
      <base64EncryptedKey>a2V5</base64EncryptedKey>
      <orx:meta><orx:instanceID>uuid:9</orx:instanceID></orx:meta>
      <media><file>photo.jpg.enc</file><file>audio.m4a.enc</file></media>
      <encryptedXmlFile>submission.xml.enc</encryptedXmlFile>
      <base64EncryptedElementSignature>c2ln</base64EncryptedElementSignature>
    </data>"""
    parsed = parse_submission(xml)
    assert parsed.encrypted
    assert (parsed.form_id, parsed.version, parsed.instance_id) == ("secret", "2", "uuid:9")
    assert parsed.encrypted_media == ["photo.jpg.enc", "audio.m4a.enc"]
    assert parsed.encrypted_xml_file == "submission.xml.enc"


def test_binary_values_follow_groups_and_repeats() -> None:
    record: dict[str, object] = {
        "photo": "a.jpg",
        "member": [{"id_card": "b.jpg"}, {"id_card": ""}, {"id_card": "c.jpg"}],
        "nested": {"sig": "a.jpg"},
    }
    paths = ["/photo", "/member/id_card", "/nested/sig", "/missing"]
    assert binary_values(record, paths) == ["a.jpg", "b.jpg", "c.jpg"]


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"<data id='f'><a></data>", "The submission is not well-formed XML (line 1: "),
        (b"", "The submission is empty"),
        (b"<data><meta><instanceID>uuid:1</instanceID></meta></data>", "has no id attribute"),
        (b"<data id='f'><q>1</q></data>", "The submission has no meta/instanceID"),
        (b"<data id='f'><meta><instanceID> </instanceID></meta></data>", "no meta/instanceID"),
    ],
)
def test_unusable_submission_is_explained(xml: bytes, message: str) -> None:
    with pytest.raises(SubmissionError) as caught:
        parse_submission(xml)
    assert message in str(caught.value)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE data [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<data id="f"><q>&lol9;</q><meta><instanceID>uuid:1</instanceID></meta></data>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE data [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<data id="f"><q>&xxe;</q><meta><instanceID>uuid:1</instanceID></meta></data>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE data SYSTEM "http://127.0.0.1:9/evil.dtd">
<data id="f"><meta><instanceID>uuid:1</instanceID></meta></data>
"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, XXE, EXTERNAL_DTD], ids=["laughs", "xxe", "dtd"])
def test_doctype_is_rejected_without_expanding_entities(xml: bytes) -> None:
    with pytest.raises(SubmissionError, match="DOCTYPE not allowed") as caught:
        parse_submission(xml)
    assert "lollol" not in str(caught.value)
    assert "root:" not in str(caught.value)


def test_undeclared_entity_is_not_well_formed() -> None:
    xml = b"<data id='f'><q>&xxe;</q><meta><instanceID>uuid:1</instanceID></meta></data>"
    with pytest.raises(SubmissionError, match="not well-formed"):
        parse_submission(xml)


def test_too_deep_nesting_is_rejected() -> None:
    deep = b"<g>" * 70 + b"x" + b"</g>" * 70
    xml = b"<data id='f'>" + deep + b"<meta><instanceID>uuid:1</instanceID></meta></data>"
    with pytest.raises(SubmissionError, match="levels deep"):
        parse_submission(xml)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_submission_error(data: bytes) -> None:
    with contextlib.suppress(SubmissionError):
        parse_submission(data)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("<>&'\"/=;") + list(string.printable)), max_size=60).map(
        lambda s: b"<data id='f'><meta><instanceID>uuid:1</instanceID></meta>" + s.encode()
    )
)
def test_truncated_or_mangled_xml_raises_only_submission_error(data: bytes) -> None:
    with contextlib.suppress(SubmissionError):
        parse_submission(data)


NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda n: n != "meta")
# XML 1.0 characters; the parser normalises CR and CRLF to LF, so leave CR out.
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=30,
)
LEAF = TEXT
RECORDS: st.SearchStrategy[dict[str, object]] = st.recursive(
    st.dictionaries(NAMES, LEAF, max_size=4),
    lambda inner: st.dictionaries(
        NAMES,
        st.one_of(LEAF, inner.filter(bool), st.lists(inner.filter(bool), min_size=2, max_size=3)),
        max_size=4,
    ),
    max_leaves=20,
)


def _build(parent: etree._Element, record: dict[str, object]) -> None:
    for name, value in record.items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            child = etree.SubElement(parent, name)
            if isinstance(item, dict):
                _build(child, item)
            else:
                child.text = str(item)


@settings(max_examples=150, deadline=None)
@given(RECORDS, TEXT.filter(lambda t: t.strip() != ""), st.booleans())
def test_generated_submission_round_trips(
    record: dict[str, object], instance_id: str, orx: bool
) -> None:
    root = etree.Element("data", id="form_x", version="1")
    _build(root, record)
    meta_ns = "{http://openrosa.org/xforms}" if orx else ""
    meta = etree.SubElement(root, f"{meta_ns}meta")
    etree.SubElement(meta, f"{meta_ns}instanceID").text = instance_id
    parsed = parse_submission(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    assert parsed.form_id == "form_x"
    assert parsed.instance_id == instance_id.strip()
    parsed_record = dict(parsed.record)
    assert parsed_record.pop("meta") == {"instanceID": instance_id}
    assert parsed_record == record


@given(st.integers(min_value=1, max_value=3), st.booleans())
def test_with_repeats_equals_parsing_with_repeat_paths(members: int, nested_group: bool) -> None:
    group = "<g><h>1</h></g>" if nested_group else ""
    body = "".join(f"<member><age>{i}</age>{group}</member>" for i in range(members))
    xml = (
        f'<data id="f"><household>{body}</household>'
        "<meta><instanceID>uuid:1</instanceID></meta></data>"
    ).encode()
    paths = frozenset({"/household/member"})
    assert with_repeats(parse_submission(xml), paths) == parse_submission(xml, repeat_paths=paths)


def test_a_bare_ampersand_is_read_as_central_reads_it() -> None:
    # pyodk's live suite sends this instance ID as is, unescaped.
    xml = (
        b'<data id="fruits" version="1"><meta>'
        b"<instanceID>scna+~!@#$%^&*()_+=-\xe2\x9c\x85</instanceID></meta>"
        b"<fruit>Papaya &amp; mango &#x2713;</fruit></data>"
    )
    parsed = parse_submission(xml)
    assert parsed.instance_id == "scna+~!@#$%^&*()_+=-✅"
    assert parsed.record["fruit"] == "Papaya & mango ✓"


@pytest.mark.parametrize(
    "xml",
    [
        b'<data id="f"><meta><instanceID>a&nbsp;b</instanceID></meta></data>',
        b'<data id="f"><meta><instanceID>a & b</instanceID></meta>',
        b'<!DOCTYPE d [<!ENTITY e "x">]><data id="f">&e; & more</data>',
    ],
)
def test_undeclared_entities_broken_xml_and_doctypes_stay_refused(xml: bytes) -> None:
    with pytest.raises(SubmissionError):
        parse_submission(xml)
