"""node-config: what it generates is checked with libraries other than the generator's code.

No Besu or IPFS Cluster binary installs here, so the Besu side is decoded with `rlp`, `eth-keys`
and `tomllib`, pinned with Besu's own QBFT extraData test vector, and loaded into py-evm; the
libp2p identities are pinned with published vectors (libp2p spec, rust-libp2p, IPFS Cluster's own
test identity) and decoded with a base58 decoder of the test's own.
"""
from __future__ import annotations

import base64
import json
import secrets
import stat
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import rlp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_keys import keys
from eth_utils import to_canonical_address, to_checksum_address

from fullchain.consortium import ConsortiumClient, Founder, deploy_consortium
from fullchain.errors import ConfigError, InvalidInput
from fullchain.models import Role
from fullchain.nodeconfig import besu, ipfs_cluster, libp2p, permissions
from fullchain.nodeconfig.validate import validate

from .conftest import run_cli

PW = {"FULLCHAIN_PASSWORD": "node-config tests"}

# Besu, consensus/qbft/src/test/.../QbftExtraDataCodecTest.java, RAW_HEX_ENCODING_STRING: vanity
# 0x01..0x20, validators 0x..01 and 0x..02, an add vote for 0x..01, round 0xFEDCBA, two seals
# (r=1, s=10, v=0) and (r=10, s=1, v=0).
BESU_QBFT_VECTOR = (
    "f8f0a00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20ea940000000000000000"
    "000000000000000000000001940000000000000000000000000000000000000002d7940000000000000000"
    "00000000000000000000000181ff83fedcbaf886b841000000000000000000000000000000000000000000"
    "0000000000000000000001000000000000000000000000000000000000000000000000000000000000000a"
    "00b841000000000000000000000000000000000000000000000000000000000000000a0000000000000000"
    "00000000000000000000000000000000000000000000000100")
QBFT_MIX_HASH = "0x" + b"ctical byzantine fault tolerance".hex()


def decode_qbft(extra: bytes) -> dict:
    """The test's own reading of QBFT extraData, straight from the RLP."""
    vanity, validators, vote, round_, seals = rlp.decode(extra)
    return {"vanity": vanity, "validators": ["0x" + v.hex() for v in validators],
            "vote": [(("0x" + vote[0].hex()), vote[1])] if vote else [],
            "round": int.from_bytes(round_, "big"), "seals": seals}


def address_of(key_file: Path) -> str:
    return keys.PrivateKey(bytes.fromhex(key_file.read_text().strip()[2:])).public_key.to_checksum_address()


def public_of(key_file: Path) -> bytes:
    return keys.PrivateKey(bytes.fromhex(key_file.read_text().strip()[2:])).public_key.to_bytes()


def enode_key(url: str) -> bytes:
    parts = urlsplit(url)
    assert parts.scheme == "enode" and parts.port
    return bytes.fromhex(parts.username or "")


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + B58.index(char)
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> besu.BesuNetwork:
    funded = [to_checksum_address(secrets.token_bytes(20)) for _ in range(2)]
    return besu.generate(tmp_path_factory.mktemp("nc") / "net", validators=5, chain_id=4242, block_period=3,
                         fund=funded)


# ---- QBFT extraData ----

def test_besu_published_qbft_vector_decodes_with_the_same_code() -> None:
    got = decode_qbft(bytes.fromhex(BESU_QBFT_VECTOR))
    assert got["vanity"] == bytes(range(1, 33))
    assert got["validators"] == ["0x" + "00" * 19 + "01", "0x" + "00" * 19 + "02"]
    assert got["vote"] == [("0x" + "00" * 19 + "01", b"\xff")]
    assert got["round"] == 0xFEDCBA
    assert got["seals"] == [(1).to_bytes(32, "big") + (10).to_bytes(32, "big") + b"\0",
                            (10).to_bytes(32, "big") + (1).to_bytes(32, "big") + b"\0"]


def test_generated_extra_data_lists_the_validator_keys_in_ascending_order(network: besu.BesuNetwork) -> None:
    genesis = json.loads((network.directory / "genesis.json").read_text())
    got = decode_qbft(bytes.fromhex(genesis["extraData"][2:]))
    from_keys = [address_of(network.directory / f"validator{i}" / "key") for i in range(1, 6)]
    assert len(set(from_keys)) == 5
    ascending = ["0x" + raw.hex() for raw in sorted(to_canonical_address(a) for a in from_keys)]
    assert got["validators"] == ascending
    assert got["vanity"] == b"\0" * 32 and got["vote"] == [] and got["round"] == 0 and got["seals"] == []
    assert genesis["extraData"].endswith("c080c0")  # no vote, round 0, no seals: as `besu rlp encode` writes


def test_genesis_has_the_qbft_header_constants_and_free_gas(network: besu.BesuNetwork) -> None:
    genesis = json.loads((network.directory / "genesis.json").read_text())
    assert genesis["mixHash"] == QBFT_MIX_HASH and genesis["difficulty"] == "0x1"
    config = genesis["config"]
    assert config["chainId"] == 4242 and config["zeroBaseFee"] is True and config["cancunTime"] == 0
    assert config["qbft"] == {"blockperiodseconds": 3, "epochlength": 30000, "requesttimeoutseconds": 6}


def test_genesis_loads_into_py_evm_with_its_alloc(network: besu.BesuNetwork) -> None:
    from eth.chains.base import MiningChain
    from eth.db.atomic import AtomicDB
    from eth.vm.forks import CancunVM

    class QbftCancunVM(CancunVM):
        # py-evm knows only proof-of-stake header rules after Paris (difficulty 0, mixHash as
        # randomness); QBFT keeps difficulty 1 and its own mixHash: set them after the checks.
        @classmethod
        def create_genesis_header(cls, **params):  # noqa: ANN003, ANN206
            difficulty, mix_hash = params.pop("difficulty"), params.pop("mix_hash")
            return super().create_genesis_header(**params).copy(difficulty=difficulty, mix_hash=mix_hash)

    genesis = json.loads((network.directory / "genesis.json").read_text())
    params = {"difficulty": int(genesis["difficulty"], 16), "gas_limit": int(genesis["gasLimit"], 16),
              "timestamp": int(genesis["timestamp"], 16), "extra_data": bytes.fromhex(genesis["extraData"][2:]),
              "mix_hash": bytes.fromhex(genesis["mixHash"][2:]), "coinbase": bytes.fromhex(genesis["coinbase"][2:]),
              "nonce": int(genesis["nonce"], 16).to_bytes(8, "big")}
    state = {to_canonical_address("0x" + a): {"balance": int(v["balance"], 16), "nonce": 0, "code": b"",
                                              "storage": {}} for a, v in genesis["alloc"].items()}
    chain_class = MiningChain.configure(vm_configuration=((0, QbftCancunVM),), chain_id=genesis["config"]["chainId"])
    chain = chain_class.from_genesis(AtomicDB(), params, state)
    head = chain.get_canonical_head()
    assert head.block_number == 0 and head.difficulty == 1 and head.mix_hash == b"ctical byzantine fault tolerance"
    assert decode_qbft(head.extra_data)["validators"] == [v.lower() for v in
                                                         sorted((v.address for v in network.validators),
                                                                key=lambda a: to_canonical_address(a))]
    vm = chain.get_vm()
    assert len(network.accounts) == 2
    for account in network.accounts:
        assert vm.state.get_balance(to_canonical_address(account)) == 10**24


# ---- keys, enodes, TOML ----

def test_every_toml_file_reads_with_tomllib(network: besu.BesuNetwork) -> None:
    files = sorted(network.directory.rglob("*.toml"))
    assert len(files) == 10
    for path in files:
        tomllib.loads(path.read_text())
    config = tomllib.loads((network.directory / "validator1" / "config.toml").read_text())
    assert config["min-gas-price"] == 0 and "QBFT" in config["rpc-http-api"]
    assert config["permissions-nodes-config-file-enabled"] is True
    assert config["permissions-accounts-config-file-enabled"] is True
    assert config["genesis-file"] == "genesis.json" and config["node-private-key-file"] == "key"
    assert config["discovery-enabled"] is False and config["static-nodes-file"] == "static-nodes.json"


def test_every_enode_matches_its_node_key_and_keys_are_private(network: besu.BesuNetwork) -> None:
    by_key = {}
    for i in range(1, 6):
        node = network.directory / f"validator{i}"
        assert stat.S_IMODE((node / "key").stat().st_mode) == 0o600
        public = public_of(node / "key")
        assert (node / "key.pub").read_text().strip() == "0x" + public.hex()
        by_key[public] = f"validator{i}"
    enodes = [v.enode for v in network.validators]
    assert {enode_key(e) for e in enodes} == set(by_key)
    for v in network.validators:
        assert by_key[enode_key(v.enode)] == v.name
        assert address_of(network.directory / v.name / "key") == v.address
    for i in range(1, 6):
        node = network.directory / f"validator{i}"
        static = json.loads((node / "static-nodes.json").read_text())
        assert len(static) == 4 and public_of(node / "key") not in {enode_key(e) for e in static}
        assert {enode_key(e) for e in static} <= set(by_key)
        allowed = tomllib.loads((node / "permissions_config.toml").read_text())
        assert {enode_key(e) for e in allowed["nodes-allowlist"]} == set(by_key)
        assert {a.lower() for a in allowed["accounts-allowlist"]} == {a.lower() for a in network.accounts}


def test_validate_accepts_the_generated_directory_and_names_a_tampered_file(tmp_path: Path) -> None:
    net = besu.generate(tmp_path / "net", validators=4, fund=["0x" + "ab" * 20])
    report = validate(net.directory)
    assert report.ok, report.problems
    other = keys.PrivateKey(secrets.token_bytes(32)).public_key.to_bytes()
    (net.directory / "validator2" / "key.pub").write_text("0x" + other.hex() + "\n")
    genesis = json.loads((net.directory / "genesis.json").read_text())
    extra = rlp.decode(bytes.fromhex(genesis["extraData"][2:]))
    extra[1] = list(reversed(extra[1]))
    genesis["extraData"] = "0x" + rlp.encode(extra).hex()
    (net.directory / "genesis.json").write_text(json.dumps(genesis))
    (net.directory / "validator3" / "key").chmod(0o644)
    permissions.export(net.directory / "validator4" / permissions.FILE_NAME,
                       permissions.read(net.directory / "validator4" / permissions.FILE_NAME).merged(
                           accounts=["0x" + "ef" * 20]))
    problems = "\n".join(validate(net.directory).problems)
    assert "validator2/key.pub: does not match the node key" in problems
    assert "extraData validators are not in ascending order" in problems
    assert "validator3/key: mode 644" in problems
    assert "genesis.json: differs from" in problems  # each validator's copy is now stale
    assert "permissions_config.toml of validator4 differs from validator1's" in problems


def test_node_hosts_give_the_enodes_and_must_match_the_count(tmp_path: Path) -> None:
    hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    net = besu.generate(tmp_path / "net", validators=3, node_hosts=hosts, fund=["0x" + "cd" * 20], p2p_port=30310)
    assert [urlsplit(v.enode).hostname for v in net.validators] == hosts
    assert all(urlsplit(v.enode).port == 30310 for v in net.validators)
    assert validate(net.directory).ok
    with pytest.raises(InvalidInput, match="2 --node-host values for 3 validators"):
        besu.generate(tmp_path / "other", validators=3, node_hosts=hosts[:2], fund=["0x" + "cd" * 20])
    assert not (tmp_path / "other").exists()


def test_refuses_a_non_empty_directory_and_force_keeps_the_old_one(tmp_path: Path) -> None:
    out = tmp_path / "net"
    first = besu.generate(out, validators=1, fund=["0x" + "ab" * 20])
    old_key = (out / "validator1" / "key").read_text()
    with pytest.raises(ConfigError, match="is not empty"):
        besu.generate(out, validators=1, fund=["0x" + "ab" * 20])
    assert (out / "validator1" / "key").read_text() == old_key
    second = besu.generate(out, validators=1, fund=["0x" + "ab" * 20], force=True)
    assert second.validators[0].address != first.validators[0].address
    kept = list(tmp_path.glob("net.replaced-*"))
    assert len(kept) == 1 and (kept[0] / "validator1" / "key").read_text() == old_key
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left behind


def test_a_network_nobody_could_transact_on_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no account would be allowed"):
        besu.generate(tmp_path / "net", validators=1)
    assert not (tmp_path / "net").exists()


# ---- allowlists from governance ----

def test_permissions_follow_a_governance_vote_and_drift_is_caught(embedded_chain, tmp_path: Path) -> None:  # noqa: ANN001
    (gov1, tx1), (gov2, tx2) = embedded_chain.account(), embedded_chain.account()
    founders = [Founder(gov1.address, Role.GOVERNOR | Role.HOSPITAL, secrets.token_bytes(32)),
                Founder(gov2.address, Role.GOVERNOR | Role.PHARMA, secrets.token_bytes(32))]
    address, _ = deploy_consortium(tx1, embedded_chain.w3, founders, threshold=2, voting_period=3600)
    c1, c2 = ConsortiumClient(embedded_chain.w3, address, tx1), ConsortiumClient(embedded_chain.w3, address, tx2)
    net = besu.generate(tmp_path / "net", validators=2, allowlists=permissions.from_chain(c1))
    deployed = net.directory / "validator1" / permissions.FILE_NAME
    before = deployed.read_text()
    expected = permissions.from_chain(c1).merged(nodes=besu.validator_enodes(net.directory))
    assert not permissions.drift(permissions.read(deployed), expected)

    newcomer = to_checksum_address(secrets.token_bytes(20))
    node = "enode://" + keys.PrivateKey(secrets.token_bytes(32)).public_key.to_bytes().hex() + "@192.0.2.7:30303"
    for pid in (c1.propose_account(newcomer, allowed=True), c1.propose_node(node, allowed=True)):
        c2.approve(pid)
        c1.execute(pid)

    expected = permissions.from_chain(c1).merged(nodes=besu.validator_enodes(net.directory))
    drift = permissions.drift(permissions.read(deployed), expected)
    assert drift.missing_accounts == [newcomer] and drift.missing_nodes == [node]
    assert f"+ accounts-allowlist {newcomer}" in drift.lines() and f"+ nodes-allowlist {node}" in drift.lines()
    permissions.export(deployed, expected)
    after = tomllib.loads(deployed.read_text())
    assert deployed.read_text() != before
    assert newcomer in after["accounts-allowlist"] and node in after["nodes-allowlist"]
    assert all(v.enode in after["nodes-allowlist"] for v in net.validators)
    assert not permissions.drift(permissions.read(deployed), expected)


def test_cli_permissions_check_exits_1_on_a_stale_file(home: Path, tmp_path: Path) -> None:
    for name in ("hospital", "pharma"):
        assert run_cli("init", "--profile", name, env=PW).returncode == 0
    deployed = run_cli("-p", "hospital", "chain", "deploy", "--founder", "hospital:hospital,governor",
                       "--founder", "pharma:pharma,governor", "--threshold", "1", env=PW)
    assert deployed.returncode == 0, deployed.stderr
    out = tmp_path / "net"
    made = run_cli("-p", "hospital", "node-config", "besu", "--validators", "4", "--members-from-chain",
                   "--block-period", "2", "--chain-id", "2026", "-o", str(out), "--json", env=PW)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["chain_id"] == 2026 and len(json.loads(made.stdout)["accounts"]) == 2
    assert "private" not in made.stdout and "key" not in json.loads(made.stdout)["validators"][0]
    for secret in (out / f"validator{i}" / "key" for i in range(1, 5)):
        assert secret.read_text().strip()[2:] not in made.stdout + made.stderr
    file = str(out / "validator1" / "permissions_config.toml")
    assert run_cli("-p", "hospital", "node-config", "permissions", "--check", file, env=PW).returncode == 0

    account = to_checksum_address(secrets.token_bytes(20))
    assert run_cli("-p", "hospital", "member", "propose", "allow-account", account, env=PW).returncode == 0
    assert run_cli("-p", "hospital", "member", "execute", "1", env=PW).returncode == 0
    stale = run_cli("-p", "hospital", "node-config", "permissions", "--check", file, env=PW)
    assert stale.returncode == 1 and "Traceback" not in stale.stderr
    assert stale.stdout.strip() == f"+ accounts-allowlist {account}"
    assert stale.stderr.strip().splitlines() == [stale.stderr.strip()]
    assert "out of step with the chain (1 account(s) missing)" in stale.stderr
    assert run_cli("-p", "hospital", "node-config", "permissions", "-o", file, env=PW).returncode == 0
    assert account in tomllib.loads(Path(file).read_text())["accounts-allowlist"]
    assert run_cli("-p", "hospital", "node-config", "permissions", "--check", file, env=PW).returncode == 0
    other = str(out / "validator4" / "permissions_config.toml")
    assert run_cli("-p", "hospital", "node-config", "permissions", "--check", other, env=PW).returncode == 1
    every = run_cli("-p", "hospital", "node-config", "permissions", "--network", str(out), "--json", env=PW)
    assert every.returncode == 0 and len(json.loads(every.stdout)["files"]) == 4, every.stderr
    assert run_cli("-p", "hospital", "node-config", "permissions", "--check", other, env=PW).returncode == 0
    valid = run_cli("node-config", "validate", str(out))
    assert valid.returncode == 0 and "checks passed" in valid.stdout, valid.stderr


def test_cli_refusals_are_one_line(home: Path, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "precious").write_text("x")
    out = run_cli("node-config", "besu", "--validators", "1", "--account", "0x" + "ab" * 20, "-o",
                  str(tmp_path / "full"))
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "is not empty" in out.stderr
    assert (tmp_path / "full" / "precious").read_text() == "x"
    assert run_cli("node-config", "besu", "--validators", "0", "-o", str(tmp_path / "x")).returncode == 2
    both = run_cli("node-config", "permissions", "-o", str(tmp_path / "a"), "--check", str(tmp_path / "b"))
    assert both.returncode == 2 and "not both" in both.stderr
    neither = run_cli("node-config", "permissions")
    assert neither.returncode == 2 and "--network DIR" in neither.stderr
    nothing = run_cli("node-config", "validate", str(tmp_path))
    assert nothing.returncode == 1 and "holds neither network.json nor cluster.json" in nothing.stderr


# ---- libp2p identities and the IPFS Cluster ----

def test_libp2p_encodings_match_published_vectors() -> None:
    # libp2p specs, peer-ids/peer-ids.md test vectors: the Ed25519 private and public keys.
    seed = bytes.fromhex("7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d")
    public = bytes.fromhex("1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e")
    assert libp2p.marshal_public_key(public).hex() == "08011220" + public.hex()
    assert base64.b64decode(libp2p.identity_from_seed(seed).private_key_b64).hex() == (
        "08011240" + seed.hex() + public.hex())
    # rust-libp2p examples derive a key from a one-byte seed (seed, then 31 zero bytes); their
    # docs print these peer ids for seeds 0 and 1.
    assert libp2p.identity_from_seed(bytes(32)).peer_id == "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
    assert libp2p.identity_from_seed(b"\1" + bytes(31)).peer_id == \
        "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X"
    # IPFS Cluster's own identity.json (cmd/ipfs-cluster-service/test/identity.json).
    cluster_key = "CAESQPzB/FNh30DDOW2B9JBnHwhM8d7tB/hz5i7NWxzxqiStUjsVQ2mDYmNikFNVkKhibowhTjDzYnSbEXo4SLwSZns="
    again = libp2p.identity_from_seed(base64.b64decode(cluster_key)[4:36])
    assert again.peer_id == "12D3KooWFMMrT3ChFWoTz9L7QFmiLnnMXC7D51KwrCjJdiuYPJqQ"
    assert again.private_key_b64 == cluster_key


def test_ipfs_cluster_directory(tmp_path: Path) -> None:
    cluster = ipfs_cluster.generate(tmp_path / "cluster", peers=3, replication_min=2, replication_max=3,
                                    peer_hosts=["10.0.0.1", "10.0.0.2", "ipfs3.example.org"])
    secrets_seen = set()
    ids = []
    for i, peer in enumerate(cluster.peers, 1):
        node = cluster.directory / f"peer{i}"
        for private in ("identity.json", "service.json"):
            assert stat.S_IMODE((node / private).stat().st_mode) == 0o600
        identity = json.loads((node / "identity.json").read_text())
        raw = base64.b64decode(identity["private_key"])
        assert raw[:4] == bytes([0x08, 0x01, 0x12, 0x40]) and len(raw) == 68  # PrivateKey{Ed25519, 64 bytes}
        key = Ed25519PrivateKey.from_private_bytes(raw[4:36])
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert raw[36:] == public
        # PublicKey{Ed25519, 32 bytes} is 36 bytes: inlined as an identity multihash (0x00, 36).
        assert b58decode(identity["id"]) == bytes([0x00, 36, 0x08, 0x01, 0x12, 0x20]) + public
        assert identity["id"] == peer.peer_id
        ids.append(identity["id"])
        service = json.loads((node / "service.json").read_text())
        secrets_seen.add(service["cluster"]["secret"])
        assert service["cluster"]["replication_factor_min"] == 2 and service["cluster"]["replication_factor_max"] == 3
        assert service["ipfs_connector"]["ipfshttp"]["node_multiaddress"] == "/ip4/127.0.0.1/tcp/5001"
        assert service["api"]["ipfsproxy"]["listen_multiaddress"] == "/ip4/127.0.0.1/tcp/9095"
        others = (node / "peerstore").read_text().split()
        assert service["cluster"]["peer_addresses"] == others and len(others) == 2
        assert all(not line.endswith(identity["id"]) for line in others)
    assert len(secrets_seen) == 1 and len(bytes.fromhex(secrets_seen.pop())) == 32
    assert json.loads((cluster.directory / "peer1" / "service.json").read_text())["consensus"]["crdt"][
        "trusted_peers"] == ids
    assert cluster.peers[2].multiaddress == f"/dns4/ipfs3.example.org/tcp/9096/p2p/{ids[2]}"
    assert cluster.peers[0].multiaddress == f"/ip4/10.0.0.1/tcp/9096/p2p/{ids[0]}"
    assert "--storage http://127.0.0.1:9095" in (cluster.directory / "README.md").read_text()
    assert validate(cluster.directory).ok
    with pytest.raises(InvalidInput, match="replication 3..2"):
        ipfs_cluster.generate(tmp_path / "bad", peers=3, replication_min=3, replication_max=2)


def test_cli_ipfs_cluster_raft(tmp_path: Path) -> None:
    out = run_cli("node-config", "ipfs-cluster", "--peers", "2", "--consensus", "raft", "-o", str(tmp_path / "c"),
                  "--json")
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    service = json.loads((tmp_path / "c" / "peer2" / "service.json").read_text())
    assert service["consensus"]["raft"]["init_peerset"] == [p["peer_id"] for p in made["peers"]]
    assert service["cluster"]["secret"] not in out.stdout
    assert run_cli("node-config", "validate", str(tmp_path / "c")).returncode == 0


def test_hosts_that_cannot_be_written_in_an_address_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="node host 'validator-1.example.org' is not an IPv4 address"):
        besu.generate(tmp_path / "net", validators=1, node_hosts=["validator-1.example.org"], fund=["0x" + "ab" * 20])
    with pytest.raises(InvalidInput, match="neither an IP address nor a DNS name"):
        ipfs_cluster.generate(tmp_path / "cluster", peers=1, peer_hosts=["a/b"])
    assert list(tmp_path.iterdir()) == []
