"""Keys never rest on disk unencrypted, and a wrong password is named as such."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

import fullchain
from fullchain.keys import load_hpke_private_key, load_signer
from fullchain.profiles import create_profile, load_profile

PW = "s3cret-for-tests"


def test_keys_are_encrypted_at_rest(tmp_path: Path) -> None:
    config = create_profile(tmp_path, "alice", PW)
    directory = tmp_path / "profiles" / "alice"
    signer = load_signer(directory, PW, profile="alice")
    hpke = load_hpke_private_key(directory, PW, profile="alice")
    assert signer.address == config.address
    public = hpke.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert "0x" + public.hex() == config.hpke_public_key
    secrets = [signer.key.hex().removeprefix("0x"),
               hpke.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                  serialization.NoEncryption()).hex()]
    for path in directory.rglob("*"):
        raw = path.read_bytes()
        text = raw.decode("utf-8", "replace").lower()
        assert not any(s in text for s in secrets), f"{path} holds a private key in the clear"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path} is readable by others"
    assert b"ENCRYPTED PRIVATE KEY" in (directory / "hpke-key.pem").read_bytes()


def test_wrong_password_is_named(tmp_path: Path) -> None:
    create_profile(tmp_path, "bob", PW)
    directory = tmp_path / "profiles" / "bob"
    with pytest.raises(fullchain.WrongPassword, match="wrong password for profile 'bob'"):
        load_signer(directory, "not it", profile="bob")
    with pytest.raises(fullchain.WrongPassword, match="HPKE key of profile 'bob'"):
        load_hpke_private_key(directory, "not it", profile="bob")


def test_empty_password_refused_and_profiles_not_overwritten(tmp_path: Path) -> None:
    with pytest.raises(fullchain.KeystoreError, match="empty password"):
        create_profile(tmp_path, "carol", "")
    assert not (tmp_path / "profiles" / "carol").exists()
    first = create_profile(tmp_path, "carol", PW)
    with pytest.raises(fullchain.ProfileExists):
        create_profile(tmp_path, "carol", PW)
    assert load_profile(tmp_path, "carol").address == first.address


def test_invalid_profile_names_are_refused(tmp_path: Path) -> None:
    for name in ("../escape", "Upper", "", "a" * 41):
        with pytest.raises(fullchain.ConfigError, match="invalid profile name"):
            create_profile(tmp_path, name, PW)


def test_corrupt_profile_file_is_reported(tmp_path: Path) -> None:
    create_profile(tmp_path, "dave", PW)
    (tmp_path / "profiles" / "dave" / "profile.json").write_text('{"name": "dave"}')
    with pytest.raises(fullchain.ConfigError, match="profile file .* is invalid"):
        load_profile(tmp_path, "dave")
