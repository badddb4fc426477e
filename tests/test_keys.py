"""Keys never rest on disk unencrypted, and a wrong password is named as such."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

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
    assert not (directory / "hpke-key.pem").exists()


def test_wrong_password_is_named(tmp_path: Path) -> None:
    create_profile(tmp_path, "bob", PW)
    directory = tmp_path / "profiles" / "bob"
    with pytest.raises(fullchain.WrongPassword, match="wrong password for profile 'bob'"):
        load_signer(directory, "not it", profile="bob")
    with pytest.raises(fullchain.WrongPassword, match="wrong password for profile 'bob'"):
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


def _open_as_documented(document: dict, signing_key: bytes, address: str) -> bytes:
    """The HPKE key file format, opened from its description alone (fullchain.keys docstring)."""
    salt = bytes.fromhex(document["kdf"]["salt"])
    key = HKDF(hashes.SHA256(), 32, salt=salt, info=b"fullchain/hpke-key/v2").derive(signing_key)
    public = bytes.fromhex(document["public_key"])
    ad = b"fullchain hpke-key v2|" + address.lower().encode() + b"|" + public
    return AESGCM(key).decrypt(bytes.fromhex(document["cipher"]["nonce"]), bytes.fromhex(document["ciphertext"]), ad)


def test_hpke_key_is_only_as_guessable_as_the_keystore(tmp_path: Path) -> None:
    """The HPKE file carries no password verifier of its own (it was PKCS#8 + PBKDF2 at 2,048
    iterations): it opens only with the signing key, which the keystore's scrypt protects."""
    create_profile(tmp_path, "erin", PW)
    directory = tmp_path / "profiles" / "erin"
    document = json.loads((directory / "hpke-key.json").read_text())
    assert document["format"] == 2 and document["kdf"]["name"] == "hkdf-sha256"
    assert json.loads((directory / "keystore.json").read_text())["crypto"]["kdf"] == "scrypt"
    signer = load_signer(directory, PW, profile="erin")
    hpke = load_hpke_private_key(directory, PW, profile="erin")
    raw = hpke.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    assert _open_as_documented(document, bytes(signer.key), signer.address) == raw
    with pytest.raises(InvalidTag):
        _open_as_documented(document, bytes(32), signer.address)


def _write_legacy_pem(directory: Path, password: str) -> X25519PrivateKey:
    """A profile's HPKE key as releases before format 2 stored it (PKCS#8, PBKDF2)."""
    key = X25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(password.encode()))
    (directory / "hpke-key.json").unlink()
    (directory / "hpke-key.pem").write_bytes(pem)
    return key


def test_old_hpke_key_file_opens_and_is_rewritten(tmp_path: Path) -> None:
    create_profile(tmp_path, "fred", PW)
    directory = tmp_path / "profiles" / "fred"
    old = _write_legacy_pem(directory, PW)
    raw = old.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    opened = load_hpke_private_key(directory, PW, profile="fred")
    assert opened.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption()) == raw
    assert not (directory / "hpke-key.pem").exists()
    new = directory / "hpke-key.json"
    assert json.loads(new.read_text())["format"] == 2 and stat.S_IMODE(new.stat().st_mode) == 0o600
    again = load_hpke_private_key(directory, PW, profile="fred")  # now from the new file
    assert again.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                               serialization.NoEncryption()) == raw


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "swap-public"])
def test_corrupt_hpke_key_file_is_not_called_a_wrong_password(tmp_path: Path, damage: str) -> None:
    create_profile(tmp_path, "gina", PW)
    path = tmp_path / "profiles" / "gina" / "hpke-key.json"
    document = json.loads(path.read_text())
    if damage == "flip":
        ct = bytearray(bytes.fromhex(document["ciphertext"]))
        ct[3] ^= 1
        document["ciphertext"] = ct.hex()
        text = json.dumps(document)
    elif damage == "swap-public":
        document["public_key"] = "11" * 32
        text = json.dumps(document)
    elif damage == "truncate":
        text = path.read_text()[:40]
    else:
        text = "\x00garbage"
    path.write_text(text)
    with pytest.raises(fullchain.KeystoreError, match="corrupt") as info:
        load_hpke_private_key(tmp_path / "profiles" / "gina", PW, profile="gina")
    assert not isinstance(info.value, fullchain.WrongPassword)
    assert str(path) in str(info.value) and "backup" in info.value.hint
    assert path.read_text() == text  # never rewritten


def test_corrupt_legacy_hpke_key_file_is_not_called_a_wrong_password(tmp_path: Path) -> None:
    create_profile(tmp_path, "hank", PW)
    directory = tmp_path / "profiles" / "hank"
    _write_legacy_pem(directory, PW)
    pem = directory / "hpke-key.pem"
    lines = pem.read_text().splitlines()
    lines[2] = "A" * len(lines[2])
    pem.write_text("\n".join(lines) + "\n")
    with pytest.raises(fullchain.KeystoreError, match="corrupt") as info:
        load_hpke_private_key(directory, PW, profile="hank")
    assert not isinstance(info.value, fullchain.WrongPassword)
    with pytest.raises(fullchain.WrongPassword):  # a wrong password is still named as such
        load_hpke_private_key(directory, "not it", profile="hank")


@pytest.mark.parametrize("content", ["{}", "[]", '{"version": 3}', '{"version": 3, "crypto": {"kdf": "scrypt"}}',
                                     "not json", '{"version": 3, "crypto": {"cipher": "aes-128-ctr", '
                                     '"cipherparams": {}, "ciphertext": "00", "kdf": "scrypt", "kdfparams": {}, '
                                     '"mac": "00"}}'])
def test_damaged_keystore_is_named_and_left_alone(tmp_path: Path, content: str) -> None:
    create_profile(tmp_path, "ivan", PW)
    path = tmp_path / "profiles" / "ivan" / "keystore.json"
    path.write_text(content)
    with pytest.raises(fullchain.KeystoreError, match="damaged") as info:
        load_signer(tmp_path / "profiles" / "ivan", PW, profile="ivan")
    assert not isinstance(info.value, fullchain.WrongPassword)
    assert str(path) in str(info.value) and "backup" in info.value.hint
    assert path.read_text() == content


def test_empty_password_is_named_not_a_type_error(tmp_path: Path) -> None:
    create_profile(tmp_path, "jane", PW)
    with pytest.raises(fullchain.PasswordRequired, match="empty"):
        load_signer(tmp_path / "profiles" / "jane", "", profile="jane")


def test_keystores_use_the_full_scrypt_work_factor_unless_told_otherwise(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from fullchain.keys import LIGHT_KDF_ENV, SIGNING_KEYSTORE, create_identity

    monkeypatch.delenv(LIGHT_KDF_ENV, raising=False)
    create_identity(tmp_path / "full", PW)
    monkeypatch.setenv(LIGHT_KDF_ENV, "1")
    create_identity(tmp_path / "light", PW)
    params = {name: json.loads((tmp_path / name / SIGNING_KEYSTORE).read_text())["crypto"]["kdfparams"]
              for name in ("full", "light")}
    assert (params["full"]["n"], params["full"]["r"], params["full"]["p"]) == (2**18, 8, 1)
    assert params["light"]["n"] == 2**12
    assert load_signer(tmp_path / "light", PW, profile="light").address
