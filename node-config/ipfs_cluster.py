"""An IPFS Cluster configuration: per peer a `service.json` and an `identity.json`, and a
`peerstore` listing the other peers.

All peers share one 32-byte secret (hex in service.json). Pins are replicated on
replication_factor_min..max peers. With CRDT consensus (default) only the listed peers are
trusted to modify the pinset; with Raft they form the initial peer set. Each peer drives the IPFS
daemon on its own host through its RPC API and serves an IPFS proxy API that fullchain's
`--storage` can use like an IPFS node: what is added through it is pinned cluster-wide.
"""
from __future__ import annotations

import ipaddress
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fullchain.errors import InvalidInput

from . import libp2p, templates
from .files import fresh_directory, write_public, write_secret

MANIFEST = "cluster.json"
KIND = "ipfs-cluster"
CLUSTER_PORT = 9096
PROXY_PORT = 9095
REST_PORT = 9094
IPFS_API = "/ip4/127.0.0.1/tcp/5001"
CONSENSUS_MODES = ("crdt", "raft")
MAX_PEERS = 64
_DNS_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


@dataclass(frozen=True)
class Peer:
    name: str
    peer_id: str
    host: str
    multiaddress: str


@dataclass(frozen=True)
class Cluster:
    directory: Path
    peers: list[Peer]
    consensus: str
    replication_min: int
    replication_max: int
    ipfs_api: str = IPFS_API
    proxy_api: str = f"/ip4/127.0.0.1/tcp/{PROXY_PORT}"
    proxy_url: str = f"http://127.0.0.1:{PROXY_PORT}"


def _host_protocol(host: str) -> str:
    try:
        return "ip6" if ipaddress.ip_address(host).version == 6 else "ip4"
    except ValueError:
        return "dns4"


def multiaddress(host: str, peer_id: str, port: int = CLUSTER_PORT) -> str:
    return f"/{_host_protocol(host)}/{host}/tcp/{port}/p2p/{peer_id}"


def service_config(*, name: str, secret: str, consensus: str, trusted: Sequence[str], replication_min: int,
                   replication_max: int, peer_addresses: Sequence[str]) -> dict[str, Any]:
    if consensus == "crdt":
        consensus_section: dict[str, Any] = {"crdt": {"cluster_name": "fullchain", "trusted_peers": list(trusted),
                                                      "batching": {"max_batch_size": 0, "max_batch_age": "0s"}}}
    else:
        consensus_section = {"raft": {"init_peerset": list(trusted), "wait_for_leader_timeout": "15s",
                                      "network_timeout": "10s", "commit_retries": 1}}
    return {
        "cluster": {
            "peername": name,
            "secret": secret,
            "leave_on_shutdown": False,
            "listen_multiaddress": [f"/ip4/0.0.0.0/tcp/{CLUSTER_PORT}"],
            "replication_factor_min": replication_min,
            "replication_factor_max": replication_max,
            "disable_repinning": False,
            "peer_addresses": list(peer_addresses),
        },
        "consensus": consensus_section,
        "api": {
            "ipfsproxy": {"listen_multiaddress": f"/ip4/127.0.0.1/tcp/{PROXY_PORT}", "node_multiaddress": IPFS_API},
            "restapi": {"http_listen_multiaddress": f"/ip4/127.0.0.1/tcp/{REST_PORT}"},
        },
        "ipfs_connector": {"ipfshttp": {"node_multiaddress": IPFS_API, "ipfs_request_timeout": "5m0s",
                                        "pin_timeout": "2m0s", "unpin_timeout": "3h0m0s"}},
        "pin_tracker": {"stateless": {"concurrent_pins": 10}},
        "monitor": {"pubsubmon": {"check_interval": "15s"}},
        "allocator": {"balanced": {"allocate_by": ["freespace"]}},
        "informer": {"disk": {"metric_ttl": "30s", "metric_type": "freespace"}},
        "datastore": {"pebble": {}},
    }


def generate(out_dir: Path, *, peers: int, replication_min: int | None = None, replication_max: int | None = None,
             consensus: str = "crdt", peer_hosts: Sequence[str] = (), force: bool = False) -> Cluster:
    """Write a cluster directory for `peers` new peers. Without `peer_hosts` the peers are named
    peer1..peerN (DNS names, e.g. on a Docker network)."""
    if not 1 <= peers <= MAX_PEERS:
        raise InvalidInput(f"{peers} peers is outside 1..{MAX_PEERS}", hint="give --peers 1 or more (3+ to survive a loss)")
    if consensus not in CONSENSUS_MODES:
        raise InvalidInput(f"unknown consensus '{consensus}'", hint="use crdt or raft")
    if peer_hosts and len(peer_hosts) != peers:
        raise InvalidInput(f"{len(peer_hosts)} --peer-host values for {peers} peers", hint="give one host per peer")
    rmax = replication_max if replication_max is not None else min(peers, 3)
    rmin = replication_min if replication_min is not None else min(rmax, 2)
    if not 1 <= rmin <= rmax <= peers:
        raise InvalidInput(f"replication {rmin}..{rmax} does not fit {peers} peers",
                           hint="need 1 <= --replication-min <= --replication-max <= --peers")
    hosts = list(peer_hosts) or [f"peer{i + 1}" for i in range(peers)]
    for host in hosts:
        if _host_protocol(host) == "dns4" and not _DNS_NAME.match(host):
            raise InvalidInput(f"peer host '{host}' is neither an IP address nor a DNS name",
                               hint="give each peer's IP address or host name, e.g. 10.0.0.5 or ipfs1.example.org")
    identities = [libp2p.generate_identity() for _ in range(peers)]
    members = [Peer(name=f"peer{i + 1}", peer_id=ident.peer_id, host=hosts[i],
                    multiaddress=multiaddress(hosts[i], ident.peer_id)) for i, ident in enumerate(identities)]
    secret = secrets.token_bytes(32).hex()
    cluster = Cluster(directory=out_dir.expanduser().absolute(), peers=members, consensus=consensus,
                      replication_min=rmin, replication_max=rmax)
    trusted = [p.peer_id for p in members]
    with fresh_directory(out_dir, force=force) as staging:
        for ident, peer in zip(identities, members):
            peer_dir = staging / peer.name
            peer_dir.mkdir(mode=0o700)
            others = [p.multiaddress for p in members if p is not peer]
            config = service_config(name=peer.name, secret=secret, consensus=consensus, trusted=trusted,
                                    replication_min=rmin, replication_max=rmax, peer_addresses=others)
            write_secret(peer_dir / "service.json", json.dumps(config, indent=2) + "\n")
            write_secret(peer_dir / "identity.json",
                         json.dumps({"id": ident.peer_id, "private_key": ident.private_key_b64}, indent=2) + "\n")
            write_public(peer_dir / "peerstore", "".join(f"{a}\n" for a in others))
        write_public(staging / "README.md", templates.cluster_readme(cluster))
        write_public(staging / MANIFEST, json.dumps(manifest(cluster), indent=2) + "\n")
    return cluster


def manifest(cluster: Cluster) -> dict[str, object]:
    return {"kind": KIND, "consensus": cluster.consensus, "replication_min": cluster.replication_min,
            "replication_max": cluster.replication_max, "proxy_url": cluster.proxy_url,
            "peers": [asdict(p) for p in cluster.peers]}
