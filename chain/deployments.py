"""Which contracts are deployed where, recorded per chain under FULLCHAIN_HOME.

A chain is identified by its chain id and genesis hash, so that profiles on the same chain share
one record and a restarted development node (new genesis) does not inherit stale addresses.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from .errors import ConfigError
from .home import deployments_dir, write_private
from .models import Deployment

if TYPE_CHECKING:
    from web3 import Web3


def chain_identity(w3: Web3) -> tuple[int, str]:
    return w3.eth.chain_id, "0x" + bytes(w3.eth.get_block(0)["hash"]).hex()


def _path(home: Path, chain_id: int, genesis_hash: str) -> Path:
    return deployments_dir(home) / f"{chain_id}-{genesis_hash[2:18]}.json"


def load_deployment(home: Path, chain_id: int, genesis_hash: str) -> Deployment | None:
    path = _path(home, chain_id, genesis_hash)
    try:
        return Deployment.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValidationError as exc:
        raise ConfigError(f"deployment record {path} is malformed ({exc.errors()[0]['msg']})",
                          hint="delete it and set the address with --consortium, or deploy again") from None


def save_deployment(home: Path, deployment: Deployment) -> Path:
    path = _path(home, deployment.chain_id, deployment.genesis_hash)
    write_private(path, deployment.model_dump_json(indent=2))
    return path


def load_deployment_file(path: Path) -> Deployment:
    """A deployment shared by another member (the JSON of `fullchain chain deploy --json`)."""
    try:
        return Deployment.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the deployment file {path} ({exc.strerror})",
                          hint="check the path given to --deployment") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "file"
        raise ConfigError(f"deployment file {path} is invalid: {field}: {first['msg']}",
                          hint="use the JSON printed by `fullchain chain deploy --json`") from None
