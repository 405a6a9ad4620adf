"""moto's server, with its DynamoDB writes taken one at a time.

moto rolls a cancelled transaction back by putting back whole copies of the
tables it touched, so under concurrent requests a lost race (a normal event
under load) also erases whatever other requests wrote meanwhile. DynamoDB
does not; the load run must measure ShopHook, not that race.

`python -m tests.reliability.moto_serialized -H 127.0.0.1 -p 5000` (moto_server's arguments)
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

WRITES = ("transact_write_items", "put_item", "update_item", "delete_item")
_one_at_a_time = threading.RLock()


def _serialized(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def serialized(*args: Any, **kwargs: Any) -> Any:
        with _one_at_a_time:
            return write(*args, **kwargs)

    return serialized


if __name__ == "__main__":
    for name in WRITES:
        setattr(DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name)))
    main()
