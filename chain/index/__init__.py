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
from ._index import DatasetEntry, EventIndex, IndexedEvent, open_index
from ._schema import index_path
from ._sync import SyncResult

__all__ = ["DatasetEntry", "EventIndex", "IndexedEvent", "SyncResult", "index_path", "open_index"]
