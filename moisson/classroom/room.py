"""Who is in the room, and what each phone may do: the rules of entry, pure.

A phone joins with the session's join code and a nickname, and becomes a citizen with
a random, pseudonymous id. It then holds a capability: ``<citizen>.<nonce>.<hmac>``,
signed with the session's secret key, which names that citizen only. A capability
that was not signed with this session's key (forged), or whose nonce is no longer the
student's (replayed after the student erased themselves, or after the room ended),
is refused. Nothing about the device or the network is kept: no address, no user
agent, only the nickname and the taps.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from moisson.errors import MoissonError
from producers.metro import STATIONS
from producers.population import Citizen

#: Join codes avoid the characters a projector makes ambiguous (0/O, 1/I/L).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
#: A nickname's length, in characters, once normalised.
NICKNAME_MAX = 24
#: Punctuation a nickname may hold besides letters, marks, digits and spaces.
NICKNAME_PUNCTUATION = frozenset(" -_.'")
#: Wrong join codes accepted per second, room-wide (no address is kept to count per phone).
WRONG_CODES_PER_S = 5
PERSONA = "student"
ADJECTIVES = ("Quiet", "Bright", "Swift", "Brave", "Calm", "Clever", "Gentle", "Lucky")
ANIMALS = ("Heron", "Panda", "Crane", "Tiger", "Otter", "Magpie", "Koi", "Lynx")


class Refused(MoissonError):
    """A request the room refuses: the HTTP status, what went wrong and the fix."""

    def __init__(self, status: int, message: str, fix: str) -> None:
        super().__init__(message, fix)
        self.status = status


def nickname_problem(name: str) -> str | None:
    """Why ``name`` cannot be a nickname, or None (it is then shown as text anyway)."""
    if not name:
        return "a nickname needs at least one letter"
    if len(name) > NICKNAME_MAX:
        return f"a nickname has at most {NICKNAME_MAX} characters"
    for ch in name:
        cat = unicodedata.category(ch)
        if cat[0] in "LMN" or ch in NICKNAME_PUNCTUATION:
            continue
        allowed = "".join(sorted(NICKNAME_PUNCTUATION - {" "}))
        what = unicodedata.name(ch, f"U+{ord(ch):04X}")
        return f"a nickname holds letters, digits, spaces and {allowed} only, not {what}"
    return None


def clean_nickname(raw: str) -> str:
    """``raw`` normalised (NFC, spaces squeezed); check it with :func:`nickname_problem`."""
    return " ".join(unicodedata.normalize("NFC", raw[: NICKNAME_MAX * 4]).split())


@dataclass
class Student:
    """One phone's citizen. ``sent`` counts the events published for it."""

    citizen: Citizen
    nonce: str
    joined_ms: int
    taps: deque[float] = field(default_factory=lambda: deque(maxlen=8))
    sent: int = 0

    @property
    def id(self) -> str:
        return self.citizen.id

    @property
    def nickname(self) -> str:
        return self.citizen.name


class Room:
    """The students of one session, their capabilities and their tap budget."""

    def __init__(
        self,
        max_students: int = 60,
        taps_per_second: int = 2,
        code: str | None = None,
        key: bytes | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.code = code or "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        self._key = key or secrets.token_bytes(32)
        self.max_students, self.taps_per_second = max_students, taps_per_second
        self.students: dict[str, Student] = {}
        #: Students who erased themselves (ids only, so a replayed capability says why).
        self.erased: set[str] = set()
        self.ended = False
        self._now = now
        self._wrong: deque[float] = deque(maxlen=WRONG_CODES_PER_S)
        self._lock = threading.Lock()

    # -- joining ------------------------------------------------------------------------

    def join(self, code: str, nickname: str, at_ms: int) -> Student:
        """A new student, or :class:`Refused` (wrong code 403, taken name 409, full 503)."""
        with self._lock:
            if not hmac.compare_digest(code.strip().upper().encode(), self.code.encode()):
                self._wrong_code()
            if self.ended:
                raise Refused(410, "the session has ended", "ask the instructor for a new room")
            if len(self.students) >= self.max_students:
                raise Refused(
                    503,
                    f"the room is full ({self.max_students} students)",
                    "ask the instructor to restart it with a larger --max-students",
                )
            name = clean_nickname(nickname) or self._generated_name()
            problem = nickname_problem(name)
            if problem:
                raise Refused(400, problem, "pick another nickname, or leave it empty for one")
            if any(s.nickname.casefold() == name.casefold() for s in self.students.values()):
                raise Refused(409, f"{name!r} is taken", "pick another nickname")
            cid = self._new_id()
            home = random.Random(cid).choice(sorted(STATIONS))
            citizen = Citizen(cid, -1, name, home, home, PERSONA, ())
            student = Student(citizen, secrets.token_hex(8), at_ms)
            self.students[cid] = student
            return student

    def _wrong_code(self) -> None:
        now = self._now()
        if len(self._wrong) == self._wrong.maxlen and now - self._wrong[0] < 1.0:
            raise Refused(429, "too many wrong join codes", "wait a second and try again")
        self._wrong.append(now)
        raise Refused(403, "wrong join code", "type the code shown on the projector")

    def _new_id(self) -> str:
        while True:
            cid = f"s{secrets.token_hex(4)}"
            if cid not in self.students and cid not in self.erased:
                return cid

    def _generated_name(self) -> str:
        taken = {s.nickname for s in self.students.values()}
        while True:
            adjective, animal = secrets.choice(ADJECTIVES), secrets.choice(ANIMALS)
            name = f"{adjective} {animal} {secrets.randbelow(90) + 10}"
            if name not in taken:
                return name

    # -- capabilities -------------------------------------------------------------------

    def capability(self, student: Student) -> str:
        return f"{student.id}.{student.nonce}.{self._sign(student.id, student.nonce)}"

    def _sign(self, cid: str, nonce: str) -> str:
        msg = f"{self.code}|{cid}|{nonce}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def holder(self, capability: str | None, acting_for: str | None = None) -> Student:
        """The student ``capability`` names (and who must be ``acting_for`` if given),
        or :class:`Refused` 403."""
        parts = (capability or "").split(".")
        cid, nonce, sig = parts if len(parts) == 3 else ("", "", "")
        fix = "join the room again from the projector's QR code"
        if not sig or not hmac.compare_digest(sig.encode(), self._sign(cid, nonce).encode()):
            raise Refused(403, "this phone holds no valid pass for this room", fix)
        student = self.students.get(cid)
        if student is None or not hmac.compare_digest(nonce.encode(), student.nonce.encode()):
            raise Refused(403, "this pass is no longer valid (erased or replayed)", fix)
        if acting_for is not None and acting_for != cid:
            raise Refused(403, "a phone can act only as its own citizen", "tap on your own phone")
        return student

    # -- taps ---------------------------------------------------------------------------

    def take_tap(self, student: Student) -> None:
        """Count one tap, or :class:`Refused` 429 past ``taps_per_second`` within a second
        (410 once the session has ended)."""
        if self.ended:
            raise Refused(410, "the session has ended", "look at your file on this phone")
        now = self._now()
        with self._lock:
            recent = [t for t in student.taps if now - t < 1.0]
            if len(recent) >= self.taps_per_second:
                raise Refused(
                    429,
                    f"at most {self.taps_per_second} taps a second",
                    "wait a moment, then tap again",
                )
            student.taps.append(now)

    def classmates(self, of: str | None = None) -> dict[str, str]:
        """Everyone in the room but ``of``: id → nickname, in joining order."""
        return {cid: s.nickname for cid, s in self.students.items() if cid != of}

    def erase(self, student: Student) -> None:
        """Forget ``student``: their capability stops working at once."""
        with self._lock:
            self.students.pop(student.id, None)
            self.erased.add(student.id)
