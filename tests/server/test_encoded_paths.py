"""The raw-path routing trick: any segment text survives encoding, routing and decoding."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.encoded_paths import path_segment, restore_segment, routing_path


def test_only_slash_and_percent_escapes_are_kept_for_routing() -> None:
    raw = b"/v1/projects/1/forms/'%3D%2B%2F*-451%25%2F%25/draft/%E2%9C%85"
    assert routing_path(raw) == "/v1/projects/1/forms/'=+%2F*-451%25%2F%25/draft/✅"
    assert restore_segment("'=+%2F*-451%25%2F%25") == "'=+/*-451%/%"


def test_an_id_spelling_an_escape_stays_that_text() -> None:
    routed = routing_path(b"/forms/%252F%2525")
    assert routed == "/forms/%252F%2525"
    assert restore_segment(routed.split("/")[2]) == "%2F%25"


def test_a_raw_path_that_is_not_ascii_is_left_to_the_server() -> None:
    assert routing_path("/forms/✅".encode()) is None


TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1)


@given(st.lists(TEXT, min_size=1, max_size=4))
def test_every_segment_written_is_routed_as_one_and_read_back_as_written(
    segments: list[str],
) -> None:
    raw = ("/" + "/".join(path_segment(s) for s in segments)).encode("ascii")
    routed = routing_path(raw)
    assert routed is not None
    assert [restore_segment(part) for part in routed.split("/")[1:]] == segments
