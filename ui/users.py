"""Who may log in to a shared server: the users, their passwords (scrypt hashes, or plain text still accepted) and
which of them are admins.

An auth file holds one user a line, blank lines and # comments allowed:

    alice:$scrypt$v=1,n=16384,r=8,p=5$<salt>$<key>:admin     written by `playground users add alice --admin`
    bob:$scrypt$v=1,n=16384,r=8,p=5$<salt>$<key>
    carol:a plain password                                    accepted, with a warning to hash it

A hash never holds a colon, so the `:admin` after it is unambiguous; a plain password may hold colons, so a plain
line cannot carry the marker (name such a user with `playground serve --admin NAME`, or hash the line).
Hashes are the standard library's scrypt (no new dependency): 16 random salt bytes, and the cost parameters written
in the hash itself, so a later version can raise them while old lines keep verifying.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from engine.files import write_atomically

log = logging.getLogger(__name__)

SCHEME = "$scrypt$"
HASH_VERSION = 1
# OWASP's scrypt setting of equal strength to N=2^17, p=1 at an eighth of the memory: about 0.1 s per hash.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 5
SALT_BYTES = 16
KEY_BYTES = 32
ADMIN_MARK = "admin"
MAX_USER_CHARS = 200
_MAX_COST = (2**20, 32, 16)  # a hand-edited line cannot make every login take minutes


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A salted, versioned scrypt hash of `password`: `$scrypt$v=1,n=...,r=...,p=...$<salt>$<key>`."""
    if not password:
        raise ValueError("the password is empty; choose one")
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, n, r, p)
    return f"{SCHEME}v={HASH_VERSION},n={n},r={r},p={p}${_b64(salt)}${_b64(key)}"


def is_hash(secret: str) -> bool:
    """True when an auth file's secret is a password hash rather than a plain password."""
    return secret.startswith(SCHEME)


def verify_password(password: str, secret: str) -> bool:
    """True when `password` matches `secret` (a hash, or a plain password); compared in constant time."""
    if not is_hash(secret):
        return hmac.compare_digest(secret.encode(), password.encode())
    n, r, p, salt, key = parse_hash(secret)
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), key)


def parse_hash(secret: str) -> tuple[int, int, int, bytes, bytes]:
    """(n, r, p, salt, key) of a hash; ValueError naming what is wrong with it."""
    parts = secret.split("$")
    if len(parts) != 5 or parts[1] != SCHEME.strip("$"):
        raise ValueError("a password hash must read $scrypt$v=1,n=N,r=R,p=P$SALT$KEY")
    try:
        params = dict(item.split("=", 1) for item in parts[2].split(","))
        version, n, r, p = (int(params[name]) for name in ("v", "n", "r", "p"))
        salt, key = _unb64(parts[3]), _unb64(parts[4])
    except (KeyError, ValueError) as exc:
        raise ValueError(f"the password hash's parameters {parts[2]!r} or its salt and key are malformed") from exc
    if version != HASH_VERSION:
        raise ValueError(f"password hash version {version} is unknown; this version reads v={HASH_VERSION}")
    if not (1 < n <= _MAX_COST[0] and n & (n - 1) == 0 and 0 < r <= _MAX_COST[1] and 0 < p <= _MAX_COST[2]):
        raise ValueError(f"scrypt cost n={n}, r={r}, p={p} is out of range (n a power of 2 up to 2^20, r<=32, p<=16)")
    if len(salt) < 8 or not key:
        raise ValueError("the password hash's salt is shorter than 8 bytes or its key is empty")
    return n, r, p, salt, key


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    memory = 128 * n * r * (p + 2)  # OpenSSL's own estimate, with room: the default 32 MB cap is too small for n=2^15
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=memory, dklen=KEY_BYTES)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


@dataclass(frozen=True)
class Users:
    """Who may log in; empty means single-user mode, where everything belongs to the local user (its admin)."""

    passwords: dict[str, str] = field(default_factory=dict)  # user -> scrypt hash, or plain password
    admins: frozenset[str] = frozenset()
    # A REST client sends its password with every call; scrypt on each would cost ~0.1 s of CPU a call. The last
    # password that verified is remembered as a keyed hash (the key lives only in this process), so it costs once.
    _verified: dict[str, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)
    _cache_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), init=False, repr=False, compare=False)

    @property
    def enabled(self) -> bool:
        return bool(self.passwords)

    def is_admin(self, username: str | None) -> bool:
        """True for a user named an admin (by --admin or the auth file's :admin marker)."""
        return bool(username) and username in self.admins

    def check(self, username: str | None, password: str | None) -> bool:
        """True when the user exists and the password matches its hash (or plain password), in constant time."""
        if password is None:
            return False
        secret = self.passwords.get(username or "")
        if secret is None:
            if any(is_hash(value) for value in self.passwords.values()):
                _scrypt(password, b"\0" * SALT_BYTES, SCRYPT_N, SCRYPT_R, SCRYPT_P)  # as slow as a wrong password
            return False
        if not is_hash(secret):
            return verify_password(password, secret)
        seen = hmac.new(self._cache_key, f"{secret}\0{password}".encode(), hashlib.sha256).digest()
        if hmac.compare_digest(self._verified.get(username or "", b""), seen):
            return True
        if not verify_password(password, secret):
            return False
        self._verified[username or ""] = seen
        return True

    @classmethod
    def parse(
        cls, pairs: list[str] | None = None, auth_file: Path | None = None, admins: list[str] | None = None
    ) -> Users:
        """Users from `user:secret` strings (--auth), an auth file (see the module's doc) and --admin names."""
        entries: list[tuple[str, str, bool]] = []
        if auth_file is not None:
            for source, line in read_auth_lines(auth_file):
                entry = parse_line(line, source)
                if not is_hash(entry[1]):
                    log.warning(
                        "%s: the password of '%s' is plain text; hash it with `playground users add %s "
                        "--auth-file %s --replace`",
                        source,
                        entry[0],
                        entry[0],
                        auth_file,
                    )
                entries.append(entry)
        entries += [parse_line(pair, "--auth") for pair in pairs or []]
        passwords: dict[str, str] = {}
        marked: set[str] = set()
        for user, secret, admin in entries:
            if user in passwords and passwords[user] != secret:
                raise ValueError(f"user '{user}' is given twice with different passwords")
            passwords[user] = secret
            if admin:
                marked.add(user)
        for name in admins or []:
            if name not in passwords:
                known = ", ".join(sorted(passwords)) or "none: add --auth USER:PASSWORD or --auth-file FILE"
                raise ValueError(f"--admin {name}: there is no such user; the users are {known}")
            marked.add(name)
        return cls(passwords, frozenset(marked))


def read_auth_lines(auth_file: Path) -> list[tuple[str, str]]:
    """(where, line) for each user line of an auth file: blank lines and # comments left out."""
    try:
        lines = Path(auth_file).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read --auth-file {auth_file}: {exc.strerror}") from exc
    return [
        (f"{auth_file} line {number}", line.strip())
        for number, line in enumerate(lines, start=1)
        if line.strip() and not line.strip().startswith("#")
    ]


def parse_line(line: str, source: str) -> tuple[str, str, bool]:
    """(user, secret, admin) of one `user:secret[:admin]` entry; ValueError naming the source otherwise."""
    user, sep, secret = line.partition(":")
    user = user.strip()
    if not sep or not user or not secret:
        raise ValueError(f"{source}: expected user:password, got {line!r}")
    if len(user) > MAX_USER_CHARS:
        raise ValueError(f"{source}: user name is longer than {MAX_USER_CHARS} characters")
    if not is_hash(secret):
        return user, secret, False
    secret, _, marks = secret.partition(":")
    if marks not in ("", ADMIN_MARK):
        raise ValueError(f"{source}: after the hash only ':{ADMIN_MARK}' may follow, got {marks!r}")
    try:
        parse_hash(secret)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from exc
    return user, secret, marks == ADMIN_MARK


def check_user_name(user: str) -> str:
    """A user name fit for an auth file line; ValueError saying what is wrong."""
    if not user or user != user.strip() or any(c.isspace() or c == ":" for c in user) or user.startswith("#"):
        raise ValueError(f"user name {user!r} must be non-empty, without spaces or ':', and not start with '#'")
    if len(user) > MAX_USER_CHARS:
        raise ValueError(f"user name is longer than {MAX_USER_CHARS} characters")
    return user


def add_user(auth_file: Path, user: str, password: str, *, admin: bool = False, replace: bool = False) -> bool:
    """Write `user` with a hash of `password` into the auth file, atomically; True when it replaced a line."""
    check_user_name(user)
    line = f"{user}:{hash_password(password)}{':' + ADMIN_MARK if admin else ''}"
    path = Path(auth_file)
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    found = [i for i, old in enumerate(lines) if _line_user(old) == user]
    if found and not replace:
        raise ValueError(f"user '{user}' is already in {path}; pass --replace to set a new password")
    if found:
        lines[found[0]] = line
        lines = [old for i, old in enumerate(lines) if i not in found[1:]]
    else:
        lines.append(line)
    write_atomically(path, "\n".join(lines) + "\n", mode=0o600)  # a new auth file: its owner reads it alone
    return bool(found)


def _line_user(line: str) -> str | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#") or ":" not in stripped:
        return None
    return stripped.partition(":")[0].strip()
