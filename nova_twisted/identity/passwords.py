"""Password hashing: bcrypt (the default) or scrypt, self-describing and cost-configurable.

Stored hashes name their algorithm, so changing ``[identity]
password_hash_algorithm`` or the cost never locks anyone out: old hashes
keep verifying. bcrypt only reads 72 bytes of its input; we feed it the
base64 of the password's SHA-256 so that every byte of a long password
counts and none is silently cut off.

These functions are CPU-bound on purpose (a quarter second at the default
cost): callers on the reactor run them in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import bcrypt

BCRYPT_PREFIX = "bcrypt-sha256$"
SCRYPT_PREFIX = "scrypt$"
#: scrypt's block size and parallelism; N comes from the configured cost.
SCRYPT_R = 8
SCRYPT_P = 1


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash_password(password: str, algorithm: str = "bcrypt", rounds: int = 12) -> str:
    """Return the stored form of ``password``: ``bcrypt-sha256$...`` or ``scrypt$...``.

    ``rounds`` is bcrypt's log2 cost, or log2 of scrypt's N. Raises
    ValueError for an unknown algorithm or a cost out of range.
    """
    if not isinstance(password, str):
        raise TypeError("password must be a string")
    if algorithm == "bcrypt":
        if not 4 <= rounds <= 31:
            raise ValueError(f"bcrypt rounds must be 4..31, not {rounds}")
        digest = bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds))
        return BCRYPT_PREFIX + digest.decode("ascii")
    if algorithm == "scrypt":
        if not 4 <= rounds <= 24:
            raise ValueError(f"scrypt log2(N) must be 4..24, not {rounds}")
        salt = secrets.token_bytes(16)
        key = _scrypt(password, salt, 2**rounds, SCRYPT_R, SCRYPT_P)
        return (
            f"{SCRYPT_PREFIX}{rounds}${SCRYPT_R}${SCRYPT_P}$"
            f"{base64.b64encode(salt).decode('ascii')}${base64.b64encode(key).decode('ascii')}"
        )
    raise ValueError(f"unknown password hash algorithm {algorithm!r}")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


def verify_password(password: str, stored: str | None) -> bool:
    """True when ``password`` matches the stored hash; False for no hash or a malformed one."""
    if not stored or not isinstance(password, str):
        return False
    try:
        if stored.startswith(BCRYPT_PREFIX):
            return bcrypt.checkpw(_prehash(password), stored[len(BCRYPT_PREFIX) :].encode("ascii"))
        if stored.startswith(SCRYPT_PREFIX):
            rounds, r, p, salt, key = stored[len(SCRYPT_PREFIX) :].split("$")
            candidate = _scrypt(password, base64.b64decode(salt), 2 ** int(rounds), int(r), int(p))
            return hmac.compare_digest(candidate, base64.b64decode(key))
    except (ValueError, TypeError):
        return False
    return False


def needs_rehash(stored: str | None, algorithm: str, rounds: int) -> bool:
    """True when ``stored`` was made with another algorithm or cost than the configured ones."""
    if not stored:
        return False
    if algorithm == "bcrypt":
        if not stored.startswith(BCRYPT_PREFIX):
            return True
        parts = stored[len(BCRYPT_PREFIX) :].split("$")
        return len(parts) < 3 or parts[2] != f"{rounds:02d}"
    if not stored.startswith(SCRYPT_PREFIX):
        return True
    return stored[len(SCRYPT_PREFIX) :].split("$", 1)[0] != str(rounds)


class DummyHash:
    """A hash to verify against when a user does not exist, so failures take equally long.

    Without it, "no such user" answers in microseconds and "wrong password"
    in a quarter second, which tells an attacker which user names exist.
    """

    def __init__(self):
        self._cache: dict[tuple[str, int], str] = {}

    def get(self, algorithm: str, rounds: int) -> str:
        """Return a valid hash of a random password at this cost (made once)."""
        key = (algorithm, rounds)
        if key not in self._cache:
            self._cache[key] = hash_password(secrets.token_urlsafe(16), algorithm, rounds)
        return self._cache[key]
