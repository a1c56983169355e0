from __future__ import annotations

from forms.personal import (
    INSTANCE_NAME,
    mask_properties,
    mask_record,
    mask_xml,
    personal_fields,
    personal_file_names,
    pseudonym,
)
from forms.schema import Field, FormSchema
from forms.submission import parse_submission
from forms.xform import read_xform

KEY = b"project secret"


def schema(*fields: Field, version: str = "1") -> FormSchema:
    return FormSchema(
        form_id="intake",
        version=version,
        title="Intake",
        root="intake",
        fields=list(fields),
        binary_paths=[f.path for f in fields if f.kind == "binary"],
    )


INTAKE = schema(
    Field("/name", "name", "string", personal=True),
    Field("/age", "age", "int", personal=True),
    Field("/district", "district", "string"),
    Field("/contact", "contact", "structure", personal=True),
    Field("/contact/phone", "phone", "string"),
    Field("/contact/photo", "photo", "binary"),
    Field("/members", "members", "repeat"),
    Field("/members/who", "who", "string", "/members", personal=True),
    Field("/document", "document", "binary"),
    Field("/meta/instanceName", "instanceName", "string"),
)

XML = (
    b'<intake id="intake"><name>Arben Hoxha</name><age>41</age><district>Shkoder</district>'
    b"<contact><phone>+355691234567</phone><photo>face.jpg</photo></contact>"
    b"<members><who>Ana</who></members><members><who>Beni</who></members>"
    b"<document>doc.jpg</document>"
    b"<meta><instanceID>uuid:1</instanceID><instanceName>Arben Hoxha</instanceName></meta>"
    b"</intake>"
)


def test_a_marked_group_covers_everything_below_it_and_the_instance_name() -> None:
    fields = personal_fields([INTAKE])

    assert fields.covers("/contact/phone")
    assert fields.covers("/members/who")
    assert fields.covers(INSTANCE_NAME)
    assert not fields.covers("/district")
    assert not fields.covers("/contactless")
    assert fields.binary == frozenset({"/contact/photo"})
    assert fields.withheld == frozenset({"/age"})


def test_a_mark_in_any_version_counts_and_no_mark_means_nothing_personal() -> None:
    later = schema(Field("/name", "name", "string"), version="2")

    assert personal_fields([later]).any is False
    assert personal_fields([later, INTAKE]).covers("/name")


def test_records_get_pseudonyms_for_text_and_nothing_for_numbers() -> None:
    fields = personal_fields([INTAKE])
    record = parse_submission(XML, frozenset({"/members"})).record

    masked = mask_record(record, fields, KEY)

    assert masked["name"] == pseudonym(KEY, "Arben Hoxha")
    assert "age" not in masked
    assert masked["district"] == "Shkoder"
    assert masked["contact"] == {
        "phone": pseudonym(KEY, "+355691234567"),
        "photo": pseudonym(KEY, "face.jpg"),
    }
    assert masked["members"] == [{"who": pseudonym(KEY, "Ana")}, {"who": pseudonym(KEY, "Beni")}]
    assert masked["meta"] == {"instanceID": "uuid:1", "instanceName": pseudonym(KEY, "Arben Hoxha")}
    assert record["name"] == "Arben Hoxha"  # the stored record is not changed


def test_xml_keeps_its_shape_with_stand_ins() -> None:
    masked = mask_xml(XML, personal_fields([INTAKE]), KEY)

    assert b"Arben" not in masked
    assert b"355691234567" not in masked
    assert b"<age></age>" in masked or b"<age/>" in masked
    assert b"<district>Shkoder</district>" in masked
    assert b"<instanceID>uuid:1</instanceID>" in masked
    reparsed = parse_submission(masked, frozenset({"/members"})).record
    assert reparsed["members"] == [{"who": pseudonym(KEY, "Ana")}, {"who": pseudonym(KEY, "Beni")}]


def test_files_of_personal_questions_are_named() -> None:
    record = parse_submission(XML).record

    assert personal_file_names(record, personal_fields([INTAKE])) == frozenset({"face.jpg"})


def test_entity_properties_from_personal_fields_get_pseudonyms() -> None:
    shown = mask_properties({"full_name": "Arben Hoxha", "district": "Shkoder"}, {"full_name"}, KEY)

    assert shown == {"full_name": pseudonym(KEY, "Arben Hoxha"), "district": "Shkoder"}


def xform(instance_name: str, extra_bind: str = "") -> bytes:
    return f"""<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
 xmlns:homeward="urn:homeward:xforms"><h:head><h:title>T</h:title><model>
<instance><data id="t"><case_id/><name/><label/>
<meta><instanceID/><instanceName/></meta></data></instance>
<bind nodeset="/data/case_id" type="string"/>
<bind nodeset="/data/name" type="string" homeward:personal="yes"/>
{extra_bind}
<bind nodeset="/data/meta/instanceName" type="string" calculate="{instance_name}"/>
</model></h:head><h:body/></h:html>""".encode()


def test_an_instance_name_is_personal_only_when_computed_from_personal_answers() -> None:
    from_case = read_xform(xform("concat( /data/case_id , ' / ', today())"))
    from_name = read_xform(xform("concat( /data/name , ' ', /data/case_id )"))
    through_label = read_xform(
        xform(
            "concat( /data/label )",
            '<bind nodeset="/data/label" type="string" calculate="upper-case( ../name )"/>',
        )
    )

    assert from_case.instance_name_personal is False
    assert from_name.instance_name_personal is True
    assert through_label.instance_name_personal is True
    assert not personal_fields([from_case]).covers(INSTANCE_NAME)
    assert personal_fields([from_name]).covers(INSTANCE_NAME)


def test_schemas_stored_before_the_instance_name_was_checked_count_it_as_personal() -> None:
    assert INTAKE.instance_name_personal is None
    assert personal_fields([INTAKE]).covers(INSTANCE_NAME)
