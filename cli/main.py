"""Entry point: the command group and the one place where errors become messages and exit codes."""
from __future__ import annotations

import json
import sys
import traceback
from importlib import import_module

import click

import fullchain
from fullchain.errors import FullchainError

from .context import common_options

# name -> (module, attribute, one-line help). Commands are imported only when run (or asked
# for their own --help): `fullchain --help` must not pay for web3 and py-evm.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("init", "init", "Create a profile: a signing key and an HPKE key, encrypted under a password."),
    "chain": ("chain", "chain", "Deploy the contracts and see the chain's status."),
    "member": ("member", "member", "Consortium members and their governance (k-of-n proposals)."),
    "dataset": ("dataset", "dataset", "Register, find, fetch and verify encrypted datasets anchored on chain."),
    "storage": ("storage", "storage", "Content storage: export what a dataset stored, as a CAR file."),
    "license": ("license", "license_", "Data-use licenses: request, grant, revoke, check (GA4GH DUO purposes)."),
    "consent": ("license", "consent", "Patient consent for a dataset: require, give, withdraw."),
    "agent": ("agent", "agent", "Unlock once: a key agent opens encrypted titles without the password for a while."),
    "meter": ("meter", "meter", "Contribution metering: measure data, algorithm and compute; submit, attest, dispute."),
    "pool": ("pool", "pool", "Benefit distribution: fund epochs' pools, claim shares, split and sweep by vote."),
    "audit": ("audit", "audit", "Auditors: the trail of a dataset or member, license-at-time-of-use checks."),
    "node-config": ("nodeconfig", "node_config", "Real networks: Besu QBFT validators, allowlists from governance, IPFS Cluster."),
    "demo": ("demo", "demo", "Play the consortium story on the embedded chain."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[name]
        return getattr(import_module(f".commands.{module}", __package__), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, _, short) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(fullchain.__version__, prog_name="fullchain")
@common_options
def cli() -> None:
    """fullchain: share biomedical data in a consortium, with the rules on a permissioned chain.

    State lives in $FULLCHAIN_HOME (default: your user data directory).
    """


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    verbose = "--verbose" in args or "-v" in args
    try:
        code = cli.main(args=args, prog_name="fullchain", standalone_mode=False)
        if isinstance(code, int) and code:  # non-standalone click returns Exit codes instead of raising
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        # Outside standalone mode click turns Ctrl-C into Abort (the KeyboardInterrupt is its cause).
        if isinstance(exc.__cause__, KeyboardInterrupt):
            _interrupted()
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.UsageError as exc:  # exit code 2, one line like every other error
        where = exc.ctx.command_path if exc.ctx is not None else "fullchain"
        click.echo(f"error: {exc.format_message().rstrip('.')} (see `{where} --help`)", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FullchainError as exc:
        _fail(type(exc).__name__, exc.message, exc.hint, as_json, extra=_extra(exc))
    except OSError as exc:  # the machine's doing (disk full, permissions), not a bug
        where = f" ({exc.filename})" if exc.filename else ""
        _fail("OSError", f"{exc.strerror or exc}{where}", "check the path, its permissions and the free disk space",
              as_json)
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:  # a bug, not a user mistake: say so, trace only on request
        if verbose:
            traceback.print_exc()
        _fail("InternalError", f"unexpected {type(exc).__name__}: {exc}",
              "this is a bug in fullchain; rerun with --verbose and report the traceback", as_json)
    sys.exit(0)


def _interrupted() -> None:
    click.echo("interrupted", err=True)
    sys.exit(130)


def _extra(exc: FullchainError) -> dict[str, object]:
    error_name = getattr(exc, "error_name", None)
    if error_name is None:
        return {}
    args = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in exc.error_args.items()}
    return {"contract_error": error_name, "contract_error_args": args}


def _fail(kind: str, message: str, hint: str, as_json: bool, extra: dict[str, object] | None = None) -> None:
    if as_json:
        payload = {"error": {"type": kind, "message": message, "hint": hint, **(extra or {})}}
        click.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))
    line = f"error: {message}"
    if hint:
        line += f" ({hint})"
    from .names import local_names, named  # only on the error path: it reads the profiles

    line = named(line, local_names())
    click.echo(line, err=True)
    sys.exit(1)
