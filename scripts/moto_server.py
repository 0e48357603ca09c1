"""moto's server, with DynamoDB's isolation.

moto applies the writes of a DynamoDB transaction one by one, without a lock, so concurrent
requests can observe half of a transaction or both pass the same condition. DynamoDB itself
serializes transactions against other writes. The conformance suite runs concurrent writers, so this
wrapper gives moto the isolation DynamoDB documents by running its DynamoDB operations one at a
time. SQS operations (and their long polls) are not serialized.
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_LOCK = threading.RLock()


def _serialized(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return wrapper


for _name in (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "transact_write_items",
    "transact_get_items",
    "batch_write_item",
):
    if hasattr(DynamoDBBackend, _name):
        setattr(DynamoDBBackend, _name, _serialized(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
