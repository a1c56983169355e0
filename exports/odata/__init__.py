"""Central's OData feed for form submissions, without HTTP or a database.

``model`` names a form's tables and types, ``metadata`` writes the service and
``$metadata`` documents, ``rows`` turns stored records into entity rows and
``filter`` reads ``$filter``/``$orderby`` into a small AST that the server
translates to SQL.
"""

from .errors import ODataError
from .filter import OrderKey, mentions, parse_filter, parse_orderby
from .metadata import render_metadata, service_document
from .model import ROOT_TABLE, Node, ODataModel, build_model, sanitize
from .rendered import RENDER_VERSION, render_fields, shape_key, splice_row
from .rows import RowOptions, RowWriter, Selection, parse_select

__all__ = [
    "RENDER_VERSION",
    "ROOT_TABLE",
    "Node",
    "ODataError",
    "ODataModel",
    "OrderKey",
    "RowOptions",
    "RowWriter",
    "Selection",
    "build_model",
    "mentions",
    "parse_filter",
    "parse_orderby",
    "parse_select",
    "render_fields",
    "render_metadata",
    "sanitize",
    "service_document",
    "shape_key",
    "splice_row",
]
