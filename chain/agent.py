"""A key agent: one unlock, then reading commands open key bundles without the password.

Unlocking a profile stretches its password with scrypt (~1 s by design, against guessing), and
every command that shows encrypted metadata pays it again. Like ssh-agent and gpg-agent, the
agent is a process of the user's that holds the decrypted HPKE key in memory for a limited time
and opens key bundles on request over a Unix socket; the key itself never leaves it, never
touches the disk, and the agent ends when its time is up (or on `fullchain agent stop`).

Who may ask: the socket lives in a directory only the user can enter (0700, checked), the
socket is 0600, and on Linux the agent also checks each caller's uid (SO_PEERCRED). The agent
marks itself non-dumpable, so other processes of the same user cannot read its memory through
ptrace or a core dump.

Protocol: one JSON object per line each way. {"op": "hello"} -> {"public_key": hex,
"expires_at": unix seconds}; {"op": "unwrap", "wrapped": hex, "commitment": hex|null} ->
{"data_key": hex, "salt": hex, "commitment": hex} or {"error": message}; {"op": "stop"}.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, FullchainError, IntegrityError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from .crypto import KeyBundle

_CONNECT_TIMEOUT = 2.0
# sun_path holds 108 bytes on Linux, 104 on macOS; the socket's own name takes 30.
_MAX_DIR_LENGTH = 70
MAX_TTL = 12 * 3600
DEFAULT_TTL = 600  # gpg-agent's default cache time


@dataclass(frozen=True)
class AgentStatus:
    profile: str
    socket: Path
    public_key: str
    expires_at: int
    pid: int


def socket_path(home: Path, profile: str) -> Path:
    """Where the agent of `profile` in `home` listens. Not under the home: a Unix socket path
    is limited to ~100 bytes, and homes (test temp dirs, deep project paths) can be longer."""
    name = hashlib.sha256(f"{Path(home).resolve()}\0{profile}".encode()).hexdigest()[:24]
    return _private_dir() / f"{name}.sock"


def _private_dir() -> Path:
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    directory = base / f"fullchain-agent-{os.getuid()}"
    if len(str(directory)) > _MAX_DIR_LENGTH and Path("/tmp").is_dir():  # a deep $TMPDIR
        directory = Path("/tmp") / f"fullchain-agent-{os.getuid()}"
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        st = directory.lstat()
    except OSError as exc:
        raise ConfigError(f"cannot use the agent directory {directory} ({exc.strerror})",
                          hint="set XDG_RUNTIME_DIR to a private directory") from None
    # Someone else's directory (made first, to catch our requests) or one others may enter.
    if st.st_uid != os.getuid() or st.st_mode & 0o077 or not directory.is_dir() or directory.is_symlink():
        raise ConfigError(f"the agent directory {directory} is not private to this user",
                          hint=f"remove it (or set XDG_RUNTIME_DIR to a private directory): rm -r {directory}")
    return directory


# ---- client side ----

class AgentKey:
    """A connection to a running agent, used where a decrypted HPKE key would be."""

    def __init__(self, path: Path, public_key: bytes, expires_at: int, pid: int) -> None:
        self.path = path
        self.public_key = public_key
        self.expires_at = expires_at
        self.pid = pid

    def unwrap(self, wrapped: bytes, *, commitment: bytes | None = None) -> KeyBundle:
        from .crypto import KeyBundle

        reply = _ask(self.path, {"op": "unwrap", "wrapped": bytes(wrapped).hex(),
                                 "commitment": commitment.hex() if commitment is not None else None})
        if reply is None:
            raise FullchainError("the key agent stopped answering",
                                 hint="start it again with `fullchain agent start`, or run without it")
        if "error" in reply:
            raise IntegrityError(str(reply["error"]), hint="fetch the wrapped key again")
        return KeyBundle(data_key=bytes.fromhex(reply["data_key"]), salt=bytes.fromhex(reply["salt"]),
                         commitment=bytes.fromhex(reply["commitment"]))


def open_bundle(key: X25519PrivateKey | AgentKey, wrapped: bytes, *, commitment: bytes | None = None) -> KeyBundle:
    """`crypto.unwrap_key` with the key itself or through the agent holding it."""
    if isinstance(key, AgentKey):
        return key.unwrap(wrapped, commitment=commitment)
    from .crypto import unwrap_key

    return unwrap_key(key, wrapped, commitment=commitment)


def find_agent(home: Path, profile: str, public_key: bytes | None) -> AgentKey | None:
    """The running agent of `profile`, if there is one holding the key whose public half is
    `public_key` (the profile's, from its key file); None otherwise, and never an error: a
    command without an agent unlocks as usual."""
    try:
        path = socket_path(home, profile)
    except ConfigError:
        return None
    if not path.exists():
        return None
    reply = _ask(path, {"op": "hello"})
    if reply is None or "public_key" not in reply:
        return None
    key = bytes.fromhex(reply["public_key"])
    if public_key is not None and key != public_key:
        return None  # an agent for another key (profile re-created): do not use it
    return AgentKey(path, key, int(reply.get("expires_at", 0)), int(reply.get("pid", 0)))


def _ask(path: Path, request: dict[str, Any]) -> dict[str, Any] | None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(_CONNECT_TIMEOUT)
            s.connect(str(path))
            s.sendall(json.dumps(request).encode() + b"\n")
            data = _read_line(s)
        return json.loads(data) if data else None
    except (OSError, ValueError):
        return None


def status(home: Path, profile: str) -> AgentStatus | None:
    found = find_agent(home, profile, None)
    if found is None:
        return None
    return AgentStatus(profile=profile, socket=found.path, public_key=found.public_key.hex(),
                       expires_at=found.expires_at, pid=found.pid)


def stop(home: Path, profile: str) -> bool:
    """Ask the agent of `profile` to end; True if one was running."""
    path = socket_path(home, profile)
    if not path.exists():
        return False
    reply = _ask(path, {"op": "stop"})
    if reply is None:  # a socket left by an agent that died: tidy it
        path.unlink(missing_ok=True)
        return False
    return True


def start_agent(profile: str | None = None, *, home: str | os.PathLike[str] | None = None,
                password: str | Callable[[], str] | None = None, ttl: int = DEFAULT_TTL) -> AgentStatus:
    """Unlock `profile` (one scrypt) and start its agent for `ttl` seconds."""
    from .home import fullchain_home
    from .keys import resolve_password, unlock_identity
    from .profiles import load_profile, profile_dir, resolve_name

    root = fullchain_home(home)
    config = load_profile(root, resolve_name(profile))
    _check_ttl(ttl)
    identity = unlock_identity(profile_dir(root, config.name), resolve_password(password), profile=config.name)
    return start(root, config.name, identity.hpke.private_bytes_raw(), ttl=ttl)


def _check_ttl(ttl: int) -> None:
    if not 1 <= ttl <= MAX_TTL:
        raise ConfigError(f"an agent lifetime of {ttl} s is out of range",
                          hint=f"give between 1 s and {MAX_TTL // 3600} h")


def start(home: Path, profile: str, private_key: bytes, *, ttl: int) -> AgentStatus:
    """Start an agent holding `private_key` (the profile's decrypted HPKE key) for `ttl` seconds.
    The key goes to the child through a pipe, never a file or its command line. A running agent
    of the profile is replaced."""
    _check_ttl(ttl)
    path = socket_path(home, profile)
    stop(home, profile)
    proc = subprocess.Popen([sys.executable, "-m", "fullchain.agent"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
                            close_fds=True)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"key": private_key.hex(), "socket": str(path), "ttl": ttl}).encode() + b"\n")
    proc.stdin.close()
    line = proc.stdout.readline()
    proc.stdout.close()
    if not line.startswith(b"ready"):
        proc.wait(timeout=5)
        raise FullchainError(f"the key agent did not start ({line.decode(errors='replace').strip() or 'no answer'})",
                             hint="check that the directory of its socket is writable: " + str(path.parent))
    found = status(home, profile)
    if found is None:
        raise FullchainError("the key agent started but does not answer", hint="run `fullchain agent start` again")
    return found


# ---- the agent process ----

def _serve(private_key: bytes, path: Path, ttl: int) -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from .crypto import public_key_bytes, unwrap_key

    _harden()
    key = X25519PrivateKey.from_private_bytes(private_key)
    public = public_key_bytes(key).hex()
    expires_at = int(time.time()) + ttl
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(str(path))
    finally:
        os.umask(old)
    bound = path.stat().st_ino
    server.listen(16)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdout.close()
    try:
        while (left := expires_at - time.time()) > 0:
            server.settimeout(left)
            try:
                conn, _ = server.accept()
            except TimeoutError:
                break
            with conn:
                if not _same_user(conn):
                    continue
                conn.settimeout(5)
                try:
                    request = json.loads(_read_line(conn))
                    op = request.get("op")
                    if op == "hello":
                        reply: dict[str, Any] = {"public_key": public, "expires_at": expires_at, "pid": os.getpid()}
                    elif op == "unwrap":
                        commitment = request.get("commitment")
                        bundle = unwrap_key(key, bytes.fromhex(request["wrapped"]),
                                            commitment=bytes.fromhex(commitment) if commitment else None)
                        reply = {"data_key": bundle.data_key.hex(), "salt": bundle.salt.hex(),
                                 "commitment": bundle.commitment.hex()}
                    elif op == "stop":
                        conn.sendall(b'{"stopped": true}\n')
                        break
                    else:
                        reply = {"error": f"unknown operation {op!r}"}
                except FullchainError as exc:
                    reply = {"error": exc.message}
                except (OSError, ValueError, KeyError, TypeError, AttributeError):
                    continue  # a malformed or vanished caller; the next one is served
                try:
                    conn.sendall(json.dumps(reply).encode() + b"\n")
                except OSError:
                    pass
    finally:
        server.close()
        try:  # only our own socket: a newer agent may have replaced it
            if path.stat().st_ino == bound:
                path.unlink()
        except OSError:
            pass


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > 1 << 20:
            raise ValueError("request too large")
    return data


def _same_user(conn: socket.socket) -> bool:
    peercred = getattr(socket, "SO_PEERCRED", None)
    if peercred is None:  # not Linux: the 0700 directory and 0600 socket are the guard
        return True
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, peercred, struct.calcsize("3i")))
    return uid == os.getuid()


def _harden() -> None:
    """No core dumps and no ptrace by other processes of the user (Linux PR_SET_DUMPABLE=0)."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
        except (OSError, AttributeError):
            pass


def _main() -> None:
    config = json.loads(sys.stdin.readline())
    sys.stdin.close()
    path = Path(config["socket"])
    try:
        _private_dir()
        _serve(bytes.fromhex(config["key"]), path, int(config["ttl"]))
    except (OSError, FullchainError) as exc:
        sys.stdout.write(f"error: {exc}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _main()
