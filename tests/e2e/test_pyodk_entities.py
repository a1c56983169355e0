"""pyodk's entity and entity-list calls, unchanged, against a live Homeward.

The same calls, in the same order, as the entity tests of pyodk's own live
suite (tests/test_client.py, v1.3.0): create and query, update by base version
and by force, merge into new and existing lists, list names of the form
"uuid:..." as pyodk makes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyodk.client import Client

from tests.e2e.test_pyodk import Seeded, seeded, write_pyodk_config

__all__ = ["seeded"]  # the fixture, shared with test_pyodk

pytestmark = pytest.mark.slow  # a real server process


@pytest.fixture
def client(live_server: str, seeded: Seeded, tmp_path: Path) -> Iterator[Client]:
    config = write_pyodk_config(tmp_path / "pyodk.toml", live_server, seeded.project_id)
    with Client(config_path=config, cache_path=tmp_path / "cache.toml") as opened:
        yield opened


def _new_list(client: Client, *properties: str) -> str:
    name = client.session.get_xform_uuid()
    client.entity_lists.default_entity_list_name = name
    created = client.entity_lists.create()
    for prop in properties:
        client.entity_lists.add_property(name=prop, entity_list_name=name)
    created_name: str = created.name
    return created_name


def test_entity_lists_create_list_get_and_add_properties(client: Client) -> None:
    name = _new_list(client)
    assert (name, client.project_id) in [(e.name, e.projectId) for e in client.entity_lists.list()]
    client.entity_lists.add_property(name="test")
    assert [p.name for p in client.entity_lists.get().properties or []] == ["test"]


def test_entities_create_query_and_update(client: Client) -> None:
    client.entities.default_entity_list_name = _new_list(client, "test_label", "another_prop")
    entity = client.entities.create(
        label="test_label", data={"test_label": "test_value", "another_prop": "another_value"}
    )
    assert entity.uuid in [e.uuid for e in client.entities.list()]
    table = client.entities.get_table(select="__id")
    assert entity.uuid in [row["__id"] for row in table["value"]]
    updated = client.entities.update(
        label="test_label",
        data={"test_label": "test_value2", "another_prop": "another_value2"},
        uuid=entity.uuid,
        base_version=entity.currentVersion.version,
    )
    assert updated.currentVersion.data == {
        "test_label": "test_value2",
        "another_prop": "another_value2",
    }
    forced = client.entities.update(
        label="test_label", data={"test_label": "test_value3"}, uuid=entity.uuid, force=True
    )
    assert forced.currentVersion.data is not None
    assert forced.currentVersion.data["test_label"] == "test_value3"


def test_merge_into_a_new_list(client: Client) -> None:
    name = _new_list(client)
    client.entities.merge(
        data=[{"label": "Sydney", "state": "NSW"}, {"label": "Melbourne", "state": "VIC"}],
        entity_list_name=name,
    )
    assert len(client.entities.get_table(entity_list_name=name)["value"]) == 2


@pytest.mark.parametrize("add_and_delete", [True, False])
def test_merge_into_an_existing_list(client: Client, add_and_delete: bool) -> None:
    name = _new_list(client, "state")
    client.entities.create_many(
        data=[{"label": "Sydney", "state": "VIC"}, {"label": "Darwin", "state": "NT"}],
        entity_list_name=name,
    )
    client.entities.merge(
        data=[
            {"label": "Sydney", "state": "NSW", "postcode": "2001"},
            {"label": "Brisbane", "state": "QLD", "postcode": "4000"},
        ],
        entity_list_name=name,
        add_new_properties=add_and_delete,
        delete_not_matched=add_and_delete,
    )
    rows = client.entities.get_table(entity_list_name=name)["value"]
    observed = sorted((r["label"], r["state"], r.get("postcode")) for r in rows)
    if add_and_delete:
        assert observed == [("Brisbane", "QLD", "4000"), ("Sydney", "NSW", "2001")]
    else:
        assert observed == [
            ("Brisbane", "QLD", None),
            ("Darwin", "NT", None),
            ("Sydney", "NSW", None),
        ]
