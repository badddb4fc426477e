"""Re-read a generated directory and check it as Besu and IPFS Cluster would need it.

Every problem found is reported (not only the first), each naming its file.
"""
from __future__ import annotations

import base64
import json
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fullchain.addresses import parse_enode
from fullchain.errors import ConfigError, FullchainError

from . import besu, ipfs_cluster, libp2p, nodekeys, permissions
from .extradata import decode_extra_data, sorted_validators
from .genesis import QBFT_MIX_HASH


@dataclass
class Report:
    directory: Path
    kind: str
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def check(self, condition: bool, what: str, problem: str) -> bool:
        (self.checked if condition else self.problems).append(what if condition else problem)
        return condition


def validate(directory: Path) -> Report:
    """Check a directory written by `node-config besu` or `node-config ipfs-cluster`."""
    directory = directory.expanduser()
    if (directory / besu.MANIFEST).exists():
        return _validate_besu(directory)
    if (directory / ipfs_cluster.MANIFEST).exists():
        return _validate_cluster(directory)
    raise ConfigError(f"{directory} holds neither {besu.MANIFEST} nor {ipfs_cluster.MANIFEST}",
                      hint="give a directory written by `fullchain node-config besu` or `ipfs-cluster`")


def _json(report: Report, path: Path) -> Any:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        report.problems.append(f"{path}: cannot read ({exc.strerror})")
        return None
    except json.JSONDecodeError as exc:
        report.problems.append(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})")
        return None
    report.checked.append(f"{path.name} is valid JSON")
    return value


def _toml(report: Report, path: Path) -> dict[str, Any] | None:
    try:
        value = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        report.problems.append(f"{path}: cannot read ({exc.strerror})")
        return None
    except tomllib.TOMLDecodeError as exc:
        report.problems.append(f"{path}: not valid TOML ({exc})")
        return None
    report.checked.append(f"{path.name} is valid TOML")
    return value


def _private_mode(report: Report, path: Path) -> None:
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        report.check(mode & 0o077 == 0, f"{path} is readable by its owner only",
                     f"{path}: mode {mode:o} lets others read a secret (chmod 600 it)")


def _validate_besu(directory: Path) -> Report:
    report = Report(directory, besu.KIND)
    manifest = besu.load_manifest(directory)
    validators = manifest["validators"]
    genesis = _json(report, directory / "genesis.json")
    genesis_text = (directory / "genesis.json").read_text(encoding="utf-8") if genesis is not None else None
    addresses: list[str] = []
    enodes: dict[str, str] = {}
    for entry in validators:
        name = str(entry["name"])
        node = directory / name
        key_path = node / "key"
        try:
            key = nodekeys.read_private(key_path)
        except FullchainError as exc:
            report.problems.append(exc.message)
            continue
        _private_mode(report, key_path)
        addresses.append(key.address)
        report.check(key.address.lower() == str(entry["address"]).lower(), f"{name}: key gives its address",
                     f"{key_path}: the key's address {key.address} is not {entry['address']} in network.json")
        try:
            public = nodekeys.read_public(node / "key.pub")
            report.check(public == key.public_key, f"{name}: key.pub matches key",
                         f"{node / 'key.pub'}: does not match the node key")
        except FullchainError as exc:
            report.problems.append(exc.message)
        try:
            enode_key, host, port = parse_enode(str(entry["enode"]))
        except FullchainError:
            report.problems.append(f"{directory / besu.MANIFEST}: {name} has no valid enode")
            continue
        report.check(enode_key == key.public_key, f"{name}: enode matches its key",
                     f"{directory / besu.MANIFEST}: the enode of {name} is not its node key's public key")
        enodes[name] = f"enode://{enode_key.hex()}@{host}:{port}"
        config = _toml(report, node / "config.toml")
        if config is not None:
            _check_config(report, node, config)
        if genesis_text is not None:
            try:
                same = (node / "genesis.json").read_text(encoding="utf-8") == genesis_text
            except OSError:
                same = False
            report.check(same, f"{name}: genesis.json is the network's",
                         f"{node / 'genesis.json'}: differs from {directory / 'genesis.json'} (copy it again)")
    if genesis is not None:
        _check_genesis(report, directory / "genesis.json", genesis, addresses)
    for entry in validators:
        name = str(entry["name"])
        node = directory / name
        static = _json(report, node / "static-nodes.json")
        if isinstance(static, list):
            expected = {e for n, e in enodes.items() if n != name}
            try:
                found = {_canonical(str(s)) for s in static}
            except FullchainError:
                found = set()
                report.problems.append(f"{node / 'static-nodes.json'}: holds something that is not an enode URL")
            report.check(found == expected, f"{name}: static-nodes.json lists the other validators",
                         f"{node / 'static-nodes.json'}: does not list exactly the other validators' enodes")
        perm_path = node / permissions.FILE_NAME
        if _toml(report, perm_path) is not None:
            try:
                allowed = permissions.read(perm_path)
            except FullchainError as exc:
                report.problems.append(exc.message)
                continue
            missing = [e for e in enodes.values() if e not in allowed.nodes]
            report.check(not missing, f"{name}: nodes-allowlist has every validator",
                         f"{perm_path}: nodes-allowlist lacks {len(missing)} validator enode(s), e.g. "
                         f"{missing[0] if missing else ''}")
            report.check(bool(allowed.accounts), f"{name}: accounts-allowlist is not empty",
                         f"{perm_path}: accounts-allowlist is empty, so no account could transact")
    texts = {}
    for entry in validators:
        try:
            texts[str(entry["name"])] = (directory / str(entry["name"]) / permissions.FILE_NAME).read_text(encoding="utf-8")
        except OSError:
            continue
    if texts:
        first_name, first_text = next(iter(texts.items()))
        stale = [name for name, text in texts.items() if text != first_text]
        report.check(not stale, "every validator has the same permissions_config.toml",
                     f"{directory}: permissions_config.toml of {', '.join(stale)} differs from {first_name}'s "
                     f"(re-export with `fullchain node-config permissions --network {directory}`)")
    compose = directory / "docker-compose.yml"
    try:
        text = compose.read_text(encoding="utf-8")
        report.check(all(f"  {e['name']}:\n" in text for e in validators), "docker-compose.yml has every validator",
                     f"{compose}: does not define a service per validator")
    except OSError as exc:
        report.problems.append(f"{compose}: cannot read ({exc.strerror})")
    return report


def _canonical(enode: str) -> str:
    key, host, port = parse_enode(enode)
    return f"enode://{key.hex()}@{host}:{port}"


def _check_genesis(report: Report, path: Path, genesis: Any, addresses: list[str]) -> None:
    if not isinstance(genesis, dict):
        report.problems.append(f"{path}: not a JSON object")
        return
    report.check(str(genesis.get("mixHash", "")).lower() == QBFT_MIX_HASH, "genesis mixHash is QBFT's",
                 f"{path}: mixHash must be {QBFT_MIX_HASH} for QBFT")
    report.check(str(genesis.get("difficulty", "")).lower() in ("0x1", "1"), "genesis difficulty is 1",
                 f"{path}: difficulty must be 0x1 for QBFT")
    config = genesis.get("config") if isinstance(genesis.get("config"), dict) else {}
    report.check(isinstance(config.get("qbft"), dict), "genesis has a qbft section",
                 f"{path}: config.qbft is missing")
    report.check(config.get("zeroBaseFee") is True, "genesis has zeroBaseFee",
                 f"{path}: config.zeroBaseFee must be true for a free-gas network")
    try:
        extra = decode_extra_data(bytes.fromhex(str(genesis.get("extraData", "0x"))[2:]))
    except (FullchainError, ValueError) as exc:
        report.problems.append(f"{path}: extraData does not decode ({getattr(exc, 'message', exc)})")
        return
    report.check(extra.validators == sorted_validators(extra.validators), "extraData validators are ascending",
                 f"{path}: extraData validators are not in ascending order")
    report.check(sorted(extra.validators) == sorted(a.lower() for a in addresses),
                 "extraData lists exactly the validators' key addresses",
                 f"{path}: extraData validators differ from the addresses of the validator keys")
    report.check(extra.vote is None and extra.round == 0 and not extra.seals, "extraData has no vote, round or seals",
                 f"{path}: a genesis extraData carries no vote, round 0 and no seals")


def _check_config(report: Report, node: Path, config: dict[str, Any]) -> None:
    path = node / "config.toml"
    report.check(config.get("min-gas-price") == 0, f"{node.name}: min-gas-price=0",
                 f"{path}: min-gas-price must be 0 on every node of a free-gas network")
    report.check("QBFT" in (config.get("rpc-http-api") or []), f"{node.name}: QBFT RPC API enabled",
                 f"{path}: rpc-http-api must include QBFT")
    for flag, file_key in (("permissions-nodes-config-file-enabled", "permissions-nodes-config-file"),
                           ("permissions-accounts-config-file-enabled", "permissions-accounts-config-file")):
        report.check(config.get(flag) is True and (node / str(config.get(file_key, ""))).is_file(),
                     f"{node.name}: {flag} with its file", f"{path}: {flag} must be true and {file_key} must exist")
    for key in ("genesis-file", "node-private-key-file", "static-nodes-file"):
        report.check((node / str(config.get(key, ""))).is_file(), f"{node.name}: {key} exists",
                     f"{path}: {key} does not name a file in {node}")


def _validate_cluster(directory: Path) -> Report:
    report = Report(directory, ipfs_cluster.KIND)
    manifest = _json(report, directory / ipfs_cluster.MANIFEST)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("peers"), list):
        report.problems.append(f"{directory / ipfs_cluster.MANIFEST}: does not describe a cluster")
        return report
    secrets_seen: set[str] = set()
    ids = [str(p.get("peer_id")) for p in manifest["peers"]]
    for entry in manifest["peers"]:
        name = str(entry.get("name"))
        node = directory / name
        identity = _json(report, node / "identity.json")
        _private_mode(report, node / "identity.json")
        _private_mode(report, node / "service.json")
        if isinstance(identity, dict):
            try:
                raw = base64.b64decode(str(identity.get("private_key")), validate=True)
                ok = (len(raw) == 68 and raw[:4] == b"\x08\x01\x12\x40"
                      and libp2p.identity_from_seed(raw[4:36]).peer_id == identity.get("id") == entry.get("peer_id"))
            except ValueError:
                ok = False
            report.check(ok, f"{name}: identity id matches its private key",
                         f"{node / 'identity.json'}: the id does not match the Ed25519 private key")
        service = _json(report, node / "service.json")
        if isinstance(service, dict):
            cluster = service.get("cluster", {})
            secret = str(cluster.get("secret", ""))
            secrets_seen.add(secret)
            report.check(len(secret) == 64 and all(c in "0123456789abcdef" for c in secret), f"{name}: secret is 32 bytes",
                         f"{node / 'service.json'}: cluster.secret must be 64 hex digits")
            rmin, rmax = cluster.get("replication_factor_min"), cluster.get("replication_factor_max")
            report.check(isinstance(rmin, int) and isinstance(rmax, int) and 1 <= rmin <= rmax <= len(ids),
                         f"{name}: replication factors fit", f"{node / 'service.json'}: replication factors "
                                                              f"{rmin}..{rmax} do not fit {len(ids)} peers")
    report.check(len(secrets_seen) == 1, "every peer shares one secret",
                 f"{directory}: the peers' service.json hold different secrets")
    return report
