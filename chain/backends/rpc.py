"""Any Ethereum JSON-RPC node: anvil in development, Besu/GoQuorum/geth in a consortium."""
from __future__ import annotations

from requests.exceptions import RequestException
from web3 import Web3
from web3.exceptions import Web3Exception
from web3.types import RPCEndpoint

from ..errors import ChainUnreachable


def open_rpc(url: str, *, timeout: float = 30.0) -> Web3:
    """A Web3 over `url`, checked to answer (chain id) before it is returned."""
    # web3 validates every call against eth_chainId; a node's chain id never changes, so cache it
    # (two round trips per transaction otherwise).
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}, cache_allowed_requests=True,
                                cacheable_requests={RPCEndpoint("eth_chainId")}))
    try:
        w3.eth.chain_id
    except (RequestException, Web3Exception, OSError, ValueError) as exc:
        reason = type(exc).__name__
        if isinstance(exc, RequestException) and "Connection refused" in str(exc):
            reason = "connection refused"
        raise ChainUnreachable(
            f"cannot reach the JSON-RPC node at {url} ({reason})",
            hint="check the URL and that the node is running (for a local node: `anvil`), "
                 "or use --chain embedded",
        ) from None
    return w3
