"""Reading an XForm into a FormSchema.

Works on any XForm, from pyxform or written by hand and uploaded directly, so
it matches elements by local name where ODK tools are lenient about namespaces
and resolves relative body references the way Collect does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from forms.entities import read_declaration
from forms.schema import HOMEWARD_NS, REPEAT, STRUCTURE, Choice, Field, FormSchema, MediaRef
from forms.xml import XmlError, child_elements, first_child, local_name, parse_xml

__all__ = ["XFormError", "read_xform", "set_xform_version"]

JR_NS = "http://openrosa.org/javarosa"

_TEMPLATE_ATTR = f"{{{JR_NS}}}template"
_PERSONAL_ATTR = f"{{{HOMEWARD_NS}}}personal"
_TRUTHY = frozenset({"yes", "true", "true()", "1"})
INSTANCE_NAME_PATH = "/meta/instanceName"
_CONTROLS = frozenset(
    {"input", "select1", "select", "upload", "trigger", "range", "rank", "textarea", "secret"}
)
_SELECT_KINDS = frozenset({"select1", "select"})
# Bind types as ODK writes them -> our kind names.
_TYPE_ALIASES = {"integer": "int", "long": "int", "short": "int", "datetime": "dateTime"}
_ITEXT_CALL = re.compile(r"""^\s*jr:itext\(\s*['"]?([^'")]+?)['"]?\s*\)\s*$""")
_INSTANCE_CALL = re.compile(r"""instance\(\s*['"]([^'"]+)['"]\s*\)""")
_MEDIA_URI = re.compile(r"""jr://(images|audio|video|file-csv|file)/([^\s'"<>)]+)""")
_MEDIA_KINDS = {
    "images": "image",
    "audio": "audio",
    "video": "video",
    "file": "file",
    "file-csv": "file",
}
# pyxform's select_one_external reads its choices from this attachment; the
# XForm only says so through a `query` attribute on <input>.
EXTERNAL_ITEMSETS = "itemsets.csv"


class XFormError(ValueError):
    """The XForm cannot be used; the message says why in plain words."""


def read_xform(xml: bytes) -> FormSchema:
    """Read an XForm's identity, fields, labels, choices and attachments."""
    html, head, model, instances, root = _primary_root(xml)
    form_id = root.get("id", "")
    title = _text(first_child(head, "title"))

    reader = _Reader(root_name=local_name(root), model=model, instances=instances)
    body = first_child(html, "body")
    if body is not None:
        reader.read_body(body, context="")
    fields = list(reader.fields_under(root, prefix="", parent_repeat=None))

    submission = first_child(model, "submission")
    public_key = submission.get("base64RsaPublicKey") if submission is not None else None
    return FormSchema(
        form_id=form_id,
        version=root.get("version"),
        title=title or form_id,
        root=local_name(root),
        fields=fields,
        languages=list(reader.translations),
        choices=reader.choices,
        binary_paths=[f.path for f in fields if f.kind == "binary"],
        encrypted=bool(public_key),
        public_key=public_key or None,
        media=_media(html),
        entity_lists=_entity_lists(instances),
        entity_dataset=_entity_dataset(root),
        instance_name_personal=reader.instance_name_personal(fields),
        entity=read_declaration(model, root),
    )


def set_xform_version(xml: bytes, version: str) -> bytes:
    """The XForm with its primary instance root's version attribute set (publish ?version=)."""
    html, _, _, _, root = _primary_root(xml)
    root.set("version", version)
    return etree.tostring(html, xml_declaration=True, encoding="UTF-8")


def _primary_root(
    xml: bytes,
) -> tuple[etree._Element, etree._Element, etree._Element, list[etree._Element], etree._Element]:
    """(h:html, h:head, model, model's instances, primary instance root), or XFormError."""
    try:
        html = parse_xml(xml)
    except XmlError as err:
        raise XFormError(f"The XForm {err.reason}") from err
    if local_name(html) != "html":
        raise XFormError(f"The XForm's root element must be <h:html>, not <{local_name(html)}>")
    head = first_child(html, "head")
    model = first_child(head, "model") if head is not None else None
    if head is None or model is None:
        raise XFormError("The XForm has no <model> inside <h:head>")
    instances = _children(model, "instance")
    primary = next((i for i in instances if i.get("id") is None), None)
    if primary is None:
        raise XFormError("The XForm's model has no primary <instance> (one without an id)")
    root = next(child_elements(primary), None)
    if root is None:
        raise XFormError("The XForm's primary <instance> is empty")
    form_id = root.get("id")
    if not form_id:
        raise XFormError(
            f"The XForm's primary instance root <{local_name(root)}> has no id attribute "
            "(the form id)"
        )
    return html, head, model, instances, root


class _Reader:
    """Collects what the body and binds say about each instance path."""

    def __init__(self, *, root_name: str, model: etree._Element, instances: list[etree._Element]):
        self.root_prefix = f"/{root_name}"
        self.translations = _translations(model)
        self.secondary = {i.get("id", ""): i for i in instances if i.get("id")}
        self.types: dict[str, str] = {}
        self.personal: set[str] = set()
        self.calculates: dict[str, str] = {}
        for bind in model.iter("{*}bind"):
            path = self.to_path(bind.get("nodeset", ""), context="")
            if path is None:
                continue
            if bind.get("calculate"):
                self.calculates[path] = bind.get("calculate", "")
            if bind.get("type"):
                self.types[path] = _normalise_type(bind.get("type", ""))
            if bind.get(_PERSONAL_ATTR, "").strip().lower() in _TRUTHY:
                self.personal.add(path)
        self.controls: dict[str, str] = {}
        self.labels: dict[str, dict[str, str]] = {}
        self.choice_lists: dict[str, str] = {}
        self.choices: dict[str, list[Choice]] = {}

    def instance_name_personal(self, fields: list[Field]) -> bool:
        """Whether meta/instanceName is computed from personal answers, even through
        other calculations. A reference counts when it names a personal question (or
        anything in a personal group) as a path step, absolute or relative, so a
        question sharing a personal one's name counts too: wrong only towards caution."""
        marked = [f.path for f in fields if f.personal]
        if not marked:
            return False
        tainted = {
            f.name for f in fields if any(f.path == p or f.path.startswith(p + "/") for p in marked)
        }
        names = {path: path.rsplit("/", 1)[-1] for path in self.calculates}
        while True:
            grown = {
                names[path]
                for path, formula in self.calculates.items()
                if names[path] not in tainted and _mentions(formula, tainted)
            }
            if not grown:
                break
            tainted |= grown
        formula = self.calculates.get(INSTANCE_NAME_PATH)
        return formula is not None and _mentions(formula, tainted)

    def to_path(self, ref: str, context: str) -> str | None:
        """Instance path without the root name, or None when outside the instance."""
        ref = ref.strip()
        if not ref:
            return None
        if ref.startswith("/"):
            if ref == self.root_prefix:
                return ""
            if ref.startswith(self.root_prefix + "/"):
                return ref[len(self.root_prefix) :]
            return None
        # Relative references in hand-written forms resolve against the enclosing group.
        return f"{context}/{ref}"

    def read_body(self, element: etree._Element, context: str) -> None:
        for child in child_elements(element):
            kind = local_name(child)
            if kind in ("group", "repeat"):
                ref = child.get("nodeset") if kind == "repeat" else child.get("ref")
                path = self.to_path(ref or "", context) if ref else None
                if path is not None:
                    if kind == "repeat":
                        self.controls[path] = REPEAT
                    else:
                        self.controls.setdefault(path, "group")
                    self._read_label(child, path)
                self.read_body(child, path if path is not None else context)
            elif kind in _CONTROLS:
                path = self.to_path(child.get("ref", ""), context)
                if path is None:
                    continue
                self.controls[path] = kind
                self._read_label(child, path)
                if kind in _SELECT_KINDS or kind == "rank":
                    self._read_choices(child, path)

    def _read_label(self, control: etree._Element, path: str) -> None:
        label = first_child(control, "label")
        if label is None or path in self.labels:
            return
        labels = self.text_of(label)
        if labels:
            self.labels[path] = labels

    def text_of(self, label: etree._Element) -> dict[str, str]:
        match = _ITEXT_CALL.match(label.get("ref", ""))
        if match:
            return self.itext(match.group(1))
        text = _text(label)
        return {"default": text} if text else {}

    def itext(self, text_id: str) -> dict[str, str]:
        return {
            lang: texts[text_id] for lang, texts in self.translations.items() if text_id in texts
        }

    def _read_choices(self, control: etree._Element, path: str) -> None:
        items = _children(control, "item")
        if items:
            self.choice_lists[path] = path
            self.choices[path] = [
                Choice(name=_text(first_child(item, "value")), labels=self._item_label(item))
                for item in items
            ]
            return
        itemset = first_child(control, "itemset")
        if itemset is None:
            return
        match = _INSTANCE_CALL.search(itemset.get("nodeset", ""))
        if match is None:
            return
        list_name = match.group(1)
        self.choice_lists[path] = list_name
        if list_name in self.choices:
            return
        instance = self.secondary.get(list_name)
        if instance is None or instance.get("src"):
            return  # choices come from an attachment, not the XForm
        value_el, label_el = first_child(itemset, "value"), first_child(itemset, "label")
        value_ref = value_el.get("ref", "name") if value_el is not None else "name"
        label_ref = label_el.get("ref", "label") if label_el is not None else "label"
        label_itext = _ITEXT_CALL.match(label_ref)
        choices = []
        for item in _instance_items(instance):
            if label_itext:
                labels = self.itext(_text(first_child(item, label_itext.group(1))))
            else:
                label_text = _text(first_child(item, label_ref))
                labels = {"default": label_text} if label_text else {}
            choices.append(Choice(name=_text(first_child(item, value_ref)), labels=labels))
        self.choices[list_name] = choices

    def _item_label(self, item: etree._Element) -> dict[str, str]:
        label = first_child(item, "label")
        return self.text_of(label) if label is not None else {}

    def fields_under(
        self, element: etree._Element, prefix: str, parent_repeat: str | None
    ) -> Iterator[Field]:
        seen: set[str] = set()
        for child in child_elements(element):
            path = f"{prefix}/{local_name(child)}"
            if path in seen:
                continue  # a repeat's jr:template followed by its first instance
            seen.add(path)
            has_children = next(child_elements(child), None) is not None
            control = self.controls.get(path)
            if control == REPEAT or child.get(_TEMPLATE_ATTR) is not None:
                kind = REPEAT
            elif has_children or control == "group":
                kind = STRUCTURE
            elif control in _SELECT_KINDS and self.types.get(path, "string") == "string":
                kind = control
            else:
                kind = self.types.get(path, "string")
            yield Field(
                path=path,
                name=local_name(child),
                kind=kind,
                parent_repeat=parent_repeat,
                personal=path in self.personal,
                labels=self.labels.get(path, {}),
                choice_list=self.choice_lists.get(path),
            )
            if has_children:
                inner_repeat = path if kind == REPEAT else parent_repeat
                yield from self.fields_under(child, path, inner_repeat)


_STEP = re.compile(r"/([A-Za-z_][\w.\-]*)")


def _mentions(formula: str, names: set[str]) -> bool:
    """Whether an XPath formula has one of `names` as a path step."""
    return any(step in names for step in _STEP.findall(formula))


def _translations(model: etree._Element) -> dict[str, dict[str, str]]:
    itext = first_child(model, "itext")
    result: dict[str, dict[str, str]] = {}
    if itext is None:
        return result
    for translation in _children(itext, "translation"):
        texts = result.setdefault(translation.get("lang", "default"), {})
        for text in _children(translation, "text"):
            values = {value.get("form"): _text(value) for value in _children(text, "value")}
            # Plain value first; long/short forms stand in when a form only has those.
            chosen = next((values[f] for f in (None, "long", "short") if values.get(f)), None)
            if chosen is not None and text.get("id"):
                texts[text.get("id", "")] = chosen
    return result


def _instance_items(instance: etree._Element) -> Iterator[etree._Element]:
    for root in child_elements(instance):
        yield from child_elements(root)


def _media(html: etree._Element) -> list[MediaRef]:
    found: dict[str, MediaRef] = {}

    def add(name: str, kind: str) -> None:
        found.setdefault(name, MediaRef(name=name, kind=kind))

    for element in html.iter():
        if not isinstance(element.tag, str):
            continue
        texts = [element.text or "", *element.attrib.values()]
        for text in texts:
            for scheme, name in _MEDIA_URI.findall(text):
                add(name, _MEDIA_KINDS[scheme])
        if local_name(element) == "input" and element.get("query"):
            add(EXTERNAL_ITEMSETS, "file")
    return list(found.values())


def _entity_lists(instances: list[etree._Element]) -> list[str]:
    names = []
    for instance in instances:
        src = instance.get("src", "")
        if src.startswith("jr://file-csv/") and src.endswith(".csv"):
            stem = src[len("jr://file-csv/") : -len(".csv")]
            if stem and stem != "itemsets" and stem not in names:
                names.append(stem)
    return names


def _entity_dataset(root: etree._Element) -> str | None:
    meta = first_child(root, "meta")
    entity = first_child(meta, "entity") if meta is not None else None
    return entity.get("dataset") if entity is not None else None


def _normalise_type(raw: str) -> str:
    name = raw.strip().rsplit(":", 1)[-1]
    return _TYPE_ALIASES.get(name.lower(), name)


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in child_elements(element) if local_name(c) == name]


def _text(element: etree._Element | None) -> str:
    if element is None:
        return ""
    return "".join(t for t in element.itertext() if isinstance(t, str)).strip()


def bind_constraints(xml: bytes) -> dict[str, str]:
    """Field path -> the constraint expression its bind declares (for data checks)."""
    _, _, model, _, root = _primary_root(xml)
    prefix = f"/{local_name(root)}"
    found: dict[str, str] = {}
    for bind in model.iter("{*}bind"):
        nodeset, constraint = bind.get("nodeset", "").strip(), bind.get("constraint", "").strip()
        if constraint and nodeset.startswith(prefix + "/"):
            found[nodeset[len(prefix) :]] = constraint
    return found
