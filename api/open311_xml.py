"""GeoReport v2 documents in XML, shaped as the spec's examples (wiki.open311.org/GeoReport_v2).

A document is the JSON answer rendered under a root element: a list becomes one child per item,
named by its container (``<services><service>``, ``<service_requests><request>``,
``<attributes><attribute>``, ``<values><value>``, ``<errors><error>``, ``<endpoints><endpoint>``,
``<formats><format>``); a dict becomes one child per field, in order; ``None`` an empty element
(``<account_id />``); booleans ``true`` / ``false``. UTF-8 with the XML declaration, as the spec
requires, and indented as its examples are. Built with the standard library's ElementTree, which
escapes the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree.ElementTree import Element, SubElement, indent, tostring

XML_MEDIA_TYPE = "text/xml"  # Starlette adds "; charset=utf-8"
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# The element of one item of each list, as the spec's examples name them.
ITEM_NAMES = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}

# Characters XML 1.0 cannot carry at all (even escaped): control characters and non-characters.
INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return INVALID_XML_CHARS.sub("", str(value))


def _fill(element: Element, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for name, child in value.items():
            _fill(SubElement(element, str(name)), child)
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        item = ITEM_NAMES.get(element.tag, "item")
        for child in value:
            _fill(SubElement(element, item), child)
    else:
        element.text = _text(value)


def xml_document(root: str, value: Any) -> bytes:
    """``value`` (JSON-ready: dicts, lists, str, numbers, bools, None) under ``<root>``."""
    element = Element(root)
    _fill(element, value)
    indent(element)
    return DECLARATION + tostring(element, encoding="unicode").encode("utf-8")


def xml_errors(errors: Sequence[tuple[int, str]]) -> bytes:
    """The spec's error document: ``<errors><error><code/><description/></error></errors>``."""
    return xml_document("errors", [{"code": code, "description": text} for code, text in errors])
