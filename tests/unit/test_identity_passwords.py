"""Password hashing: bcrypt and scrypt, verification, cost upgrades."""

import pytest

from nova_twisted.identity import passwords


@pytest.mark.parametrize("algorithm", ["bcrypt", "scrypt"])
def test_a_hash_verifies_its_password_and_no_other(algorithm):
    stored = passwords.hash_password("correct horse", algorithm, 4)
    assert "correct horse" not in stored
    assert passwords.verify_password("correct horse", stored)
    assert not passwords.verify_password("correct horsE", stored)
    assert not passwords.verify_password("", stored)


@pytest.mark.parametrize("algorithm", ["bcrypt", "scrypt"])
def test_the_same_password_hashes_differently_each_time(algorithm):
    assert passwords.hash_password("pw", algorithm, 4) != passwords.hash_password("pw", algorithm, 4)


def test_bcrypt_counts_every_byte_of_a_long_password():
    long_password = "x" * 100
    stored = passwords.hash_password(long_password, "bcrypt", 4)
    assert passwords.verify_password(long_password, stored)
    # Plain bcrypt ignores everything after byte 72; ours does not.
    assert not passwords.verify_password("x" * 72 + "y" * 28, stored)


def test_non_ascii_passwords_verify():
    stored = passwords.hash_password("pässwörd-密码", "bcrypt", 4)
    assert passwords.verify_password("pässwörd-密码", stored)
    assert not passwords.verify_password("passwörd-密码", stored)


@pytest.mark.parametrize("stored", [None, "", "plaintext", "bcrypt-sha256$garbage", "scrypt$4$8$1$!!$??", "scrypt$x"])
def test_a_missing_or_malformed_hash_never_verifies(stored):
    assert passwords.verify_password("anything", stored) is False


def test_needs_rehash_when_cost_or_algorithm_changes():
    stored = passwords.hash_password("pw", "bcrypt", 4)
    assert not passwords.needs_rehash(stored, "bcrypt", 4)
    assert passwords.needs_rehash(stored, "bcrypt", 5)
    assert passwords.needs_rehash(stored, "scrypt", 4)
    scrypt = passwords.hash_password("pw", "scrypt", 5)
    assert not passwords.needs_rehash(scrypt, "scrypt", 5)
    assert passwords.needs_rehash(scrypt, "scrypt", 6)
    assert passwords.needs_rehash(scrypt, "bcrypt", 5)


def test_unknown_algorithm_or_cost_out_of_range_is_refused():
    with pytest.raises(ValueError):
        passwords.hash_password("pw", "md5", 4)
    with pytest.raises(ValueError):
        passwords.hash_password("pw", "bcrypt", 3)


def test_dummy_hash_is_made_once_per_cost_and_verifies_nothing_guessable():
    dummy = passwords.DummyHash()
    first = dummy.get("bcrypt", 4)
    assert dummy.get("bcrypt", 4) is first
    assert not passwords.verify_password("", first)
    assert not passwords.needs_rehash(first, "bcrypt", 4)
