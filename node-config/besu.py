"""A Besu QBFT network directory: genesis, one directory per validator, compose file, README.

    DIR/network.json           what was generated (public: addresses, enodes, hosts, ports)
    DIR/genesis.json
    DIR/docker-compose.yml     every validator on one Docker host, or one per host
    DIR/README.md
    DIR/validatorN/key         the node key (0600): the validator's identity, never shared
    DIR/validatorN/key.pub     config.toml  genesis.json  static-nodes.json  permissions_config.toml

Each validator directory is self-contained: copy it to the validator's host and run
`besu --config-file=config.toml` inside it. Paths in config.toml are relative to it.
"""
from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from fullchain.addresses import to_account
from fullchain.errors import ConfigError, InvalidInput

from . import genesis as genesis_mod
from . import nodekeys, permissions, templates, toml
from .files import fresh_directory, write_public, write_secret

MANIFEST = "network.json"
KIND = "besu-qbft"
DEFAULT_CHAIN_ID = 1337
DEFAULT_P2P_PORT = 30303
DEFAULT_RPC_PORT = 8545
DEFAULT_IMAGE = "hyperledger/besu:latest"
# The bridge network of the compose file when every validator runs on one Docker host.
DOCKER_SUBNET = "172.16.239.0/24"
MAX_VALIDATORS = 64
RPC_APIS = ["ETH", "NET", "WEB3", "QBFT", "PERM", "TXPOOL"]


@dataclass(frozen=True)
class Validator:
    name: str
    address: str
    enode: str
    host: str
    p2p_port: int
    rpc_port: int  # on the validator's host (the compose file publishes it on 127.0.0.1 there)


@dataclass(frozen=True)
class BesuNetwork:
    directory: Path
    chain_id: int
    block_period: int
    validators: list[Validator]
    accounts: list[str]
    nodes: list[str]
    single_host: bool
    rpc_listen_port: int = DEFAULT_RPC_PORT


def _check_ipv4(host: str) -> None:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise InvalidInput(f"node host '{host}' is not an IPv4 address",
                           hint="Besu's enode URLs name peers by IP: give each validator host's public IPv4 address") from None


def _docker_ip(index: int) -> str:
    return f"172.16.239.{11 + index}"


def generate(out_dir: Path, *, validators: int, chain_id: int = DEFAULT_CHAIN_ID, block_period: int = 2,
             epoch_length: int = genesis_mod.DEFAULT_EPOCH_LENGTH, request_timeout: int | None = None,
             allowlists: permissions.Allowlists | None = None, fund: Sequence[str] = (),
             node_hosts: Sequence[str] = (), p2p_port: int = DEFAULT_P2P_PORT, rpc_port: int = DEFAULT_RPC_PORT,
             rpc_host: str = "127.0.0.1", image: str = DEFAULT_IMAGE, force: bool = False) -> BesuNetwork:
    """Write a complete network directory for `validators` new validators.

    `allowlists` are what governance allows (see `permissions.from_chain`); the validators'
    enodes are added to the nodes allowlist. Accounts in `fund` and in the allowlist start with a
    balance. `node_hosts` gives each validator's public IP or host name (one per validator);
    without it all validators run on one Docker host, on a private bridge network.
    """
    if not 1 <= validators <= MAX_VALIDATORS:
        raise InvalidInput(f"{validators} validators is outside 1..{MAX_VALIDATORS}",
                           hint="QBFT tolerates f faulty validators out of 3f+1: use 4 or more for production")
    if node_hosts and len(node_hosts) != validators:
        raise InvalidInput(f"{len(node_hosts)} --node-host values for {validators} validators",
                           hint="give one host per validator, in order, or none for a single Docker host")
    for host in node_hosts:
        _check_ipv4(host)
    for port, what in ((p2p_port, "p2p port"), (rpc_port, "RPC port")):
        if not 1 <= port <= 65535:
            raise InvalidInput(f"{what} {port} is outside 1..65535", hint="give a TCP port number")
    base = allowlists or permissions.Allowlists()
    funded = sorted({to_account(a, what="account to fund") for a in [*fund, *base.accounts]}, key=str.lower)
    if not base.accounts and not funded:
        raise InvalidInput("no account would be allowed to send transactions on the new network",
                           hint="pass --account ADDRESS (e.g. the deployer's), or --members-from-chain")
    allowed = base.merged(accounts=funded)

    single_host = not node_hosts
    keys = [nodekeys.generate() for _ in range(validators)]
    members = [
        Validator(name=f"validator{i + 1}", address=key.address,
                  enode=nodekeys.enode(key.public_key, _docker_ip(i) if single_host else node_hosts[i], p2p_port),
                  host=_docker_ip(i) if single_host else node_hosts[i], p2p_port=p2p_port,
                  rpc_port=rpc_port + i if single_host else rpc_port)
        for i, key in enumerate(keys)]
    allowed = allowed.merged(nodes=[v.enode for v in members])
    genesis = genesis_mod.build_genesis(
        chain_id=chain_id, validators=[v.address for v in members], block_period=block_period,
        epoch_length=epoch_length, request_timeout=request_timeout,
        alloc={a: genesis_mod.DEFAULT_BALANCE_WEI for a in funded})
    genesis_text = genesis_mod.dumps(genesis)
    network = BesuNetwork(directory=out_dir.expanduser().absolute(), chain_id=chain_id, block_period=block_period,
                          validators=members, accounts=allowed.accounts, nodes=allowed.nodes,
                          single_host=single_host, rpc_listen_port=rpc_port)

    with fresh_directory(out_dir, force=force) as staging:
        write_public(staging / "genesis.json", genesis_text)
        for key, validator in zip(keys, members):
            node_dir = staging / validator.name
            node_dir.mkdir(mode=0o755)
            write_secret(node_dir / "key", nodekeys.private_key_text(key) + "\n")
            write_public(node_dir / "key.pub", nodekeys.public_key_text(key) + "\n")
            write_public(node_dir / "genesis.json", genesis_text)
            write_public(node_dir / "config.toml", config_toml(validator, rpc_host=rpc_host, rpc_port=rpc_port))
            peers = [v.enode for v in members if v is not validator]
            write_public(node_dir / "static-nodes.json", json.dumps(peers, indent=2) + "\n")
            write_public(node_dir / permissions.FILE_NAME, permissions.render(allowed))
        write_public(staging / "docker-compose.yml", templates.docker_compose(network, image=image))
        write_public(staging / "README.md", templates.network_readme(network))
        write_public(staging / MANIFEST, json.dumps(manifest(network), indent=2) + "\n")
    return network


def config_toml(validator: Validator, *, rpc_host: str, rpc_port: int) -> str:
    """`rpc_port` is where the node listens (the compose file may publish it elsewhere)."""
    values = {
        "data-path": "data",
        "genesis-file": "genesis.json",
        "node-private-key-file": "key",
        "min-gas-price": 0,
        "p2p-enabled": True,
        "p2p-host": validator.host,
        "p2p-interface": "0.0.0.0",
        "p2p-port": validator.p2p_port,
        "discovery-enabled": False,
        "static-nodes-file": "static-nodes.json",
        "rpc-http-enabled": True,
        "rpc-http-host": rpc_host,
        "rpc-http-port": rpc_port,
        "rpc-http-api": RPC_APIS,
        "host-allowlist": ["localhost", "127.0.0.1"],
        "permissions-nodes-config-file-enabled": True,
        "permissions-nodes-config-file": permissions.FILE_NAME,
        "permissions-accounts-config-file-enabled": True,
        "permissions-accounts-config-file": permissions.FILE_NAME,
    }
    header = (f"Besu configuration of {validator.name} ({validator.address}), generated by `fullchain node-config besu`.\n"
              "Run from this directory: besu --config-file=config.toml")
    return toml.dumps(values, header=header)


def manifest(network: BesuNetwork) -> dict[str, object]:
    return {"kind": KIND, "chain_id": network.chain_id, "block_period": network.block_period,
            "single_host": network.single_host, "validators": [asdict(v) for v in network.validators]}


def load_manifest(directory: Path) -> dict[str, object]:
    path = directory / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({exc.strerror})",
                          hint="give the directory `fullchain node-config besu -o DIR` wrote") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg})", hint="regenerate the network directory") from None
    if not isinstance(data, dict) or data.get("kind") != KIND or not isinstance(data.get("validators"), list):
        raise ConfigError(f"{path} does not describe a Besu network", hint="regenerate the network directory")
    return data


def validator_enodes(directory: Path) -> list[str]:
    """The validators' enodes recorded in a generated network directory."""
    return [str(v["enode"]) for v in load_manifest(directory)["validators"]]  # type: ignore[index, union-attr]


def find_network(path: Path) -> Path | None:
    """The network directory a validator's file lives in (DIR/validatorN/FILE), if any."""
    for candidate in (path.parent, path.parent.parent):
        if (candidate / MANIFEST).is_file():
            return candidate
    return None


def permission_files(directory: Path) -> list[Path]:
    """Each validator's permissions_config.toml in a generated network directory."""
    return [directory / str(v["name"]) / permissions.FILE_NAME
            for v in load_manifest(directory)["validators"]]  # type: ignore[union-attr]
