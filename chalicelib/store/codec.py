"""Domain state to and from the JSON kept in a record's `document`."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from chalicelib.domain.model import CanonicalEvent, CaseState, OrderState

if TYPE_CHECKING:
    from pydantic import TypeAdapter

_T = TypeVar("_T")


class Codec(Generic[_T]):
    def __init__(self, kind: type[_T]) -> None:
        self._kind = kind

    @cached_property
    def _adapter(self) -> TypeAdapter[_T]:
        # Built on first use (some 30 ms): not on the cold start of a function
        # that never reads or writes this kind of document; pydantic with it.
        from pydantic import TypeAdapter

        return TypeAdapter(self._kind)

    def encode(self, value: _T) -> str:
        return self._adapter.dump_json(value).decode()

    def decode(self, document: str) -> _T:
        return self._adapter.validate_json(document)


ORDER = Codec(OrderState)
CASE = Codec(CaseState)
EVENT = Codec(CanonicalEvent)


def decoded(record: Any) -> OrderState | CaseState | None:
    """The domain state an order or case record holds (None for no record)."""
    if record is None:
        return None
    from chalicelib.store.records import CaseRecord

    return (CASE if isinstance(record, CaseRecord) else ORDER).decode(record.document)
