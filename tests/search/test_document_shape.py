"""``Document`` sets its fields in one step (a rebuild makes millions): its hand-written
``__init__`` must take every declared field, in order, with the field's default."""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields, replace

from esn.search.backend import Document


def test_init_takes_every_field_with_its_default() -> None:
    params = list(inspect.signature(Document.__init__).parameters.values())[1:]
    declared = fields(Document)
    assert [(p.name, p.default) for p in params] == [
        (f.name, f.default if f.default is not MISSING else inspect.Parameter.empty)
        for f in declared
    ]
    doc = Document(type="post", id=1, version=2, audience=frozenset({"internal"}), body="b")
    assert list(vars(doc)) == [f.name for f in declared]
    assert replace(doc, body="c").body == "c" and doc == replace(doc)
