"""The event index: every list, history and trail view reads one local SQLite file per chain,
filled from the chain's events, instead of per-item `eth_call`s or `eth_getLogs` from block 0.

    from fullchain.index import open_index
    index = open_index(fc)            # fc = fullchain.connect(...)
    index.sync()                      # fetch what is new (rewinds after a reorg)
    page = index.datasets(limit=50, offset=0, owner=fc.address)
    total = index.count_datasets(owner=fc.address)

The file lives under FULLCHAIN_HOME/index/ and is a cache: deleting it loses nothing, the next
sync rebuilds it.
"""
from typing import TYPE_CHECKING, Any

from ._index import DatasetEntry, EventIndex, IndexedEvent, PoolFigures, open_index
from ._schema import index_path

if TYPE_CHECKING:
    from ._sync import SyncResult


def __getattr__(name: str) -> Any:
    # The syncing half imports web3; reading the index does not need it.
    if name == "SyncResult":
        from ._sync import SyncResult

        return SyncResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DatasetEntry", "EventIndex", "IndexedEvent", "PoolFigures", "SyncResult", "index_path", "open_index"]
