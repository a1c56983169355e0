"""Fields of older form versions merged into the current one (Central's deletedFields=true)."""

from __future__ import annotations

from forms.schema import FormSchema, merge_schemas
from forms.xform import read_xform
from forms.xlsform import compile_xlsform

VERSION_1 = """
| survey |
|        | type                 | name   | label::English (en) | label::French (fr) |
|        | text                 | person | Person              | Personne           |
|        | integer              | age    | Age                 | Âge                |
|        | begin group          | home   | Home                | Maison             |
|        | text                 | street | Street              | Rue                |
|        | text                 | town   | Town                | Ville              |
|        | end group            |        |                     |                    |
|        | begin repeat         | child  | Child               | Enfant             |
|        | text                 | first  | First name          | Prénom             |
|        | integer              | grade  | Grade               | Classe             |
|        | end repeat           |        |                     |                    |
|        | select_one colour    | colour | Colour              | Couleur            |
| choices |
|         | list_name | name  | label::English (en) | label::French (fr) |
|         | colour    | red   | Red                 | Rouge              |
|         | colour    | blue  | Blue                | Bleu               |
| settings |
|          | form_id | version |
|          | family  | 1       |
"""

VERSION_2 = """
| survey |
|        | type              | name   | label::English (en) | label::French (fr) |
|        | text              | person | Person              | Personne           |
|        | begin group       | home   | Home                | Maison             |
|        | text              | street | Street              | Rue                |
|        | text              | postcode | Postcode          | Code postal        |
|        | end group         |        |                     |                    |
|        | begin repeat      | child  | Child               | Enfant             |
|        | text              | first  | First name          | Prénom             |
|        | end repeat        |        |                     |                    |
|        | decimal           | height | Height              | Taille             |
|        | select_one shade  | shade  | Shade               | Teinte             |
| choices |
|         | list_name | name  | label::English (en) | label::French (fr) |
|         | shade     | dark  | Dark                | Sombre             |
| settings |
|          | form_id | version |
|          | family  | 2       |
"""


def schema(markdown: str) -> FormSchema:
    compiled = compile_xlsform(markdown.encode(), file_name="family.md", form_id_fallback="family")
    return read_xform(compiled.xml)


def data_paths(merged: FormSchema) -> list[str]:
    return [f.path for f in merged.fields if not f.path.startswith("/meta")]


def test_deleted_fields_come_back_where_central_puts_them() -> None:
    merged = merge_schemas(schema(VERSION_2), [schema(VERSION_1)])

    # The current order, with each deleted field after the last field of its
    # parent's subtree in the current version (top-level ones at the very end).
    assert data_paths(merged) == [
        "/person",
        "/home",
        "/home/street",
        "/home/postcode",
        "/home/town",
        "/child",
        "/child/first",
        "/child/grade",
        "/height",
        "/shade",
        "/age",
        "/colour",
    ]


def test_revived_fields_keep_kind_repeat_labels_and_choices() -> None:
    merged = merge_schemas(schema(VERSION_2), [schema(VERSION_1)])
    by_path = {f.path: f for f in merged.fields}

    assert by_path["/age"].kind == "int"
    assert by_path["/age"].labels == {"English (en)": "Age", "French (fr)": "Âge"}
    assert by_path["/child/grade"].parent_repeat == "/child"
    colour_list = by_path["/colour"].choice_list
    assert colour_list is not None
    assert [(c.name, c.labels["French (fr)"]) for c in merged.choices[colour_list]] == [
        ("red", "Rouge"),
        ("blue", "Bleu"),
    ]
    assert [c.name for c in merged.choices[by_path["/shade"].choice_list or ""]] == ["dark"]
    assert merged.version == "2"
    assert merged.repeat_paths == frozenset({"/child"})


def test_no_older_versions_gives_the_current_fields() -> None:
    current = schema(VERSION_2)

    assert merge_schemas(current, []).fields == current.fields


def test_a_field_deleted_and_back_again_is_listed_once_in_its_new_place() -> None:
    version_3 = VERSION_1.replace("| family  | 1 ", "| family  | 3 ")
    merged = merge_schemas(schema(version_3), [schema(VERSION_1), schema(VERSION_2)])

    paths = data_paths(merged)
    assert len(paths) == len(set(paths))
    # Version 3 is version 1 again: its order first, then what only version 2 had.
    assert paths == [
        "/person",
        "/age",
        "/home",
        "/home/street",
        "/home/town",
        "/home/postcode",
        "/child",
        "/child/first",
        "/child/grade",
        "/colour",
        "/height",
        "/shade",
    ]
