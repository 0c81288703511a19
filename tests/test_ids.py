"""Generated ids: version-4 UUID text, never repeated, not even across a fork."""

from __future__ import annotations

import multiprocessing
import re
import uuid

from sblite.ids import new_id

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_ids_are_distinct_version_4_uuids():
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(UUID_TEXT.fullmatch(text) for text in ids)
    assert all(uuid.UUID(text).version == 4 for text in ids[:100])


def _child_ids(out) -> None:
    out.send([new_id() for _ in range(50)])


def test_a_forked_child_does_not_repeat_the_parents_ids():
    new_id()  # the parent has random bytes buffered that the child must not reuse
    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=_child_ids, args=(sender,))
    child.start()
    from_child = receiver.recv()
    child.join(10)
    from_parent = [new_id() for _ in range(50)]
    assert not set(from_child) & set(from_parent)
