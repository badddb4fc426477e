from __future__ import annotations

from pathlib import Path

import click

from fullchain.errors import ConfigError
from fullchain.home import fullchain_home

from ..context import common_options, connect
from ..output import emit_json, fields, is_json, say, table

OUT_DIR = click.Path(file_okay=False, path_type=Path)


@click.group(name="node-config")
def node_config() -> None:
    """Configuration for real networks: Besu QBFT validators, allowlists from governance, IPFS Cluster."""


@node_config.command()
@common_options
@click.option("--validators", type=click.IntRange(1, 64), required=True, help="How many validators (4+ tolerates one fault).")
@click.option("--members-from-chain", is_flag=True,
              help="Allow (and fund) the accounts and nodes that the Consortium on this profile's chain allows.")
@click.option("--account", "accounts", multiple=True, metavar="ACCOUNT",
              help="An account (address or local profile) allowed to transact and funded in genesis; repeat.")
@click.option("--block-period", type=click.IntRange(min=1), default=2, show_default=True, help="Seconds per block.")
@click.option("--epoch-length", type=click.IntRange(min=1), default=30000, show_default=True,
              help="Blocks per QBFT epoch (votes reset); do not change it on a running network.")
@click.option("--request-timeout", type=click.IntRange(min=1), default=None,
              help="QBFT round timeout in seconds (default: twice the block period).")
@click.option("--chain-id", type=click.IntRange(min=1), default=1337, show_default=True)
@click.option("--node-host", "node_hosts", multiple=True, metavar="HOST",
              help="Public IP of each validator's host, in order (default: all on one Docker host).")
@click.option("--p2p-port", type=click.IntRange(1, 65535), default=30303, show_default=True)
@click.option("--rpc-port", type=click.IntRange(1, 65535), default=8545, show_default=True)
@click.option("--rpc-host", default="127.0.0.1", show_default=True, help="Interface JSON-RPC listens on.")
@click.option("--image", default="hyperledger/besu:latest", show_default=True, help="Besu image for docker-compose.yml.")
@click.option("-o", "--output", type=OUT_DIR, required=True, help="Directory to write (new or empty).")
@click.option("--force", is_flag=True, help="Replace a non-empty directory (the old one is kept as DIR.replaced-TIME).")
def besu(validators: int, members_from_chain: bool, accounts: tuple[str, ...], block_period: int, epoch_length: int,
         request_timeout: int | None, chain_id: int, node_hosts: tuple[str, ...], p2p_port: int, rpc_port: int,
         rpc_host: str, image: str, output: Path, force: bool) -> None:
    """Write a Besu QBFT network: genesis, validator keys and configs, allowlists, compose file."""
    from fullchain.nodeconfig import besu as besu_net
    from fullchain.nodeconfig import permissions
    from fullchain.profiles import resolve_account

    home = fullchain_home()
    fund = [resolve_account(home, a)[0] for a in accounts]
    allowlists = permissions.from_chain(connect().consortium) if members_from_chain else None
    net = besu_net.generate(output, validators=validators, chain_id=chain_id, block_period=block_period,
                            epoch_length=epoch_length, request_timeout=request_timeout, allowlists=allowlists,
                            fund=fund, node_hosts=node_hosts, p2p_port=p2p_port, rpc_port=rpc_port,
                            rpc_host=rpc_host, image=image, force=force)
    if is_json():
        emit_json({**besu_net.manifest(net), "directory": str(net.directory), "accounts": net.accounts,
                   "nodes": net.nodes})
        return
    table(f"QBFT network, chain id {net.chain_id}, in {net.directory}", ["validator", "address", "enode host", "RPC"],
          [(v.name, v.address, f"{v.host}:{v.p2p_port}", f"127.0.0.1:{v.rpc_port}") for v in net.validators])
    fields([("accounts allowed", len(net.accounts)), ("nodes allowed", len(net.nodes))])
    say(f"node keys are in {net.directory}/validatorN/key (0600): keep each on its own host; "
        f"see {net.directory}/README.md to start the nodes")


@node_config.command(name="permissions")
@common_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write permissions_config.toml here (default with --network: every validator's file).")
@click.option("--check", "check_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Exit 1 if this deployed file is out of step with the chain.")
@click.option("--network", type=click.Path(file_okay=False, path_type=Path),
              help="The network directory (its validators stay allowed); found by itself for DIR/validatorN/ files.")
def permissions_(output: Path | None, check_file: Path | None, network: Path | None) -> None:
    """Export the Consortium's account and node allowlists as Besu's permissions_config.toml."""
    from fullchain.nodeconfig import besu as besu_net
    from fullchain.nodeconfig import permissions

    if output is not None and check_file is not None:
        raise click.UsageError("give -o FILE or --check FILE, not both")
    target = output or check_file
    if target is None and network is None:
        raise click.UsageError("give -o FILE, --check FILE, or --network DIR (rewrites every validator's file)")
    network = network or besu_net.find_network((target or Path(".")).absolute())
    expected = permissions.from_chain(connect().consortium)
    if network is not None:
        expected = expected.merged(nodes=besu_net.validator_enodes(network))
    if check_file is None:
        files = [output] if output is not None else besu_net.permission_files(network)  # type: ignore[arg-type]
        for file in files:
            permissions.export(file, expected)
        if is_json():
            emit_json({"files": [str(f) for f in files], "accounts": expected.accounts, "nodes": expected.nodes})
            return
        fields([*(("written", f) for f in files), ("accounts allowed", len(expected.accounts)),
                ("nodes allowed", len(expected.nodes))])
        say("copy each file to its node and reload it there: perm_reloadPermissionsFromFile (PERM API)")
        return
    assert check_file is not None
    drift = permissions.drift(permissions.read(check_file), expected)
    if is_json():
        emit_json({"file": str(check_file), "in_step": not drift, "changes": drift.lines()})
    if drift:
        if not is_json():
            for line in drift.lines():
                click.echo(line)
        raise ConfigError(f"{check_file} is out of step with the chain ({drift.summary()})",
                          hint=f"re-export it with `fullchain node-config permissions -o {check_file}` and reload it")
    if not is_json():
        click.echo(f"{check_file} is in step with the chain")


@node_config.command(name="ipfs-cluster")
@common_options
@click.option("--peers", type=click.IntRange(1, 64), required=True, help="How many cluster peers.")
@click.option("--replication-min", type=click.IntRange(min=1), default=None,
              help="Fewest peers a pin must be on (default: 2, or fewer peers).")
@click.option("--replication-max", type=click.IntRange(min=1), default=None,
              help="Most peers a pin is put on (default: 3, or fewer peers).")
@click.option("--consensus", type=click.Choice(["crdt", "raft"]), default="crdt", show_default=True)
@click.option("--peer-host", "peer_hosts", multiple=True, metavar="HOST",
              help="Host (IP or DNS name) of each peer, in order (default: peer1..peerN).")
@click.option("-o", "--output", type=OUT_DIR, required=True, help="Directory to write (new or empty).")
@click.option("--force", is_flag=True, help="Replace a non-empty directory (the old one is kept as DIR.replaced-TIME).")
def ipfs_cluster(peers: int, replication_min: int | None, replication_max: int | None, consensus: str,
                 peer_hosts: tuple[str, ...], output: Path, force: bool) -> None:
    """Write an IPFS Cluster: service.json, identity.json and peerstore per peer."""
    from fullchain.nodeconfig import ipfs_cluster as cluster_mod

    cluster = cluster_mod.generate(output, peers=peers, replication_min=replication_min,
                                   replication_max=replication_max, consensus=consensus, peer_hosts=peer_hosts,
                                   force=force)
    if is_json():
        emit_json({**cluster_mod.manifest(cluster), "directory": str(cluster.directory)})
        return
    table(f"IPFS Cluster ({cluster.consensus}, replication {cluster.replication_min}..{cluster.replication_max}) "
          f"in {cluster.directory}", ["peer", "peer id", "address"],
          [(p.name, p.peer_id, p.multiaddress) for p in cluster.peers])
    say(f"identity.json and service.json (the cluster secret) are 0600; fullchain uses a peer's IPFS proxy: "
        f"--storage {cluster.proxy_url}")


@node_config.command()
@common_options
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def validate(directory: Path) -> None:
    """Re-read a generated directory and check it (extraData, keys, enodes, allowlists, files)."""
    from fullchain.nodeconfig.validate import validate as check

    report = check(directory)
    if is_json():
        emit_json({"directory": str(directory), "kind": report.kind, "ok": report.ok, "checked": len(report.checked),
                   "problems": report.problems})
    elif report.ok:
        click.echo(f"{directory}: {report.kind}, {len(report.checked)} checks passed")
    else:
        for problem in report.problems:
            click.echo(f"problem: {problem}")
    if not report.ok:
        raise ConfigError(f"{directory} has {len(report.problems)} problem(s): {report.problems[0]}",
                          hint="fix or regenerate what is named above")
