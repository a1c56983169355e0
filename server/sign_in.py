"""Password sign-in under attack: a throttle on failures, and a cap on argon2 work.

Three budgets of failed attempts, each a sliding window:

- per (account, address): a few failures a minute. This is what a person who
  mistypes meets; it ends by itself within the minute.
- per address: a larger budget over ten minutes, so one machine cannot walk
  through many accounts. It locks only that address.
- per account, from every address: a large budget, against a password spray
  from many machines. An address that signed in to this account successfully
  before is exempt, so an attacker who exhausts it cannot lock the real user out
  from their usual place; a new address waits out the window at most.

Attempts count as failures while they are being checked, so forty wrong
passwords sent at once are throttled like forty sent one after another. The
state lives in this process: each app process keeps its own, so a deployment of
N processes lets an attacker N times the budgets. That still bounds the work
(and the argon2 limiter below bounds it per process); a shared store would cost
every sign-in a database write.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import anyio.to_thread

from server import problems

# argon2-cffi's default costs ~64 MiB and ~50-100 ms of a core per check. Forty at
# once would take 2.5 GB and every core; two at a time keep memory flat and leave
# the other cores (and the event loop) to everyone else.
_ARGON2_AT_ONCE = 2


@dataclass(frozen=True, slots=True)
class Budget:
    failures: int
    seconds: float


PER_PAIR = Budget(5, 60.0)
PER_ADDRESS = Budget(30, 600.0)
PER_ACCOUNT = Budget(100, 900.0)
# How long an address that signed in stays exempt from the per-account budget.
TRUSTED_SECONDS = 30 * 24 * 3600.0
# Keys kept per table before the stale ones are swept (memory stays bounded).
_MAX_KEYS = 100_000


class _Window:
    """Failure times per key, at most ``budget.failures`` of them each."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._times: dict[str, deque[float]] = {}

    def wait(self, key: str, at: float) -> float:
        times = self._times.get(key)
        if times is None or len(times) < self.budget.failures:
            return 0.0
        return max(0.0, times[0] + self.budget.seconds - at)

    def add(self, key: str, at: float) -> None:
        times = self._times.get(key)
        if times is None:
            if len(self._times) >= _MAX_KEYS:
                self._sweep(at)
            times = self._times[key] = deque(maxlen=self.budget.failures)
        times.append(at)

    def forget_one(self, key: str) -> None:
        times = self._times.get(key)
        if times:
            times.pop()

    def clear(self, key: str) -> None:
        self._times.pop(key, None)

    def _sweep(self, at: float) -> None:
        horizon = at - self.budget.seconds
        self._times = {k: t for k, t in self._times.items() if t and t[-1] > horizon}
        while len(self._times) >= _MAX_KEYS:
            self._times.pop(next(iter(self._times)))


class SignInThrottle:
    """Decides whether a password attempt may be checked at all."""

    def __init__(
        self,
        *,
        per_pair: Budget = PER_PAIR,
        per_address: Budget = PER_ADDRESS,
        per_account: Budget = PER_ACCOUNT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pair = _Window(per_pair)
        self._address = _Window(per_address)
        self._account = _Window(per_account)
        self._trusted: dict[str, float] = {}
        self._clock = clock
        self.argon2 = anyio.CapacityLimiter(_ARGON2_AT_ONCE)

    def check(self, email: str, address: str) -> None:
        """429 when a budget is spent, even for the right password: otherwise a
        locked-out guesser would learn which guess is right."""
        email = email.strip().lower()
        at = self._clock()
        pair = f"{email}\0{address}"
        waits = [self._pair.wait(pair, at), self._address.wait(address, at)]
        if not self._is_trusted(pair, at):
            waits.append(self._account.wait(email, at))
        wait = max(waits)
        if wait > 0:
            raise too_many_attempts(wait)

    def begin(self, email: str, address: str) -> None:
        """`check`, then count the attempt as failed until it succeeds."""
        self.check(email, address)
        email = email.strip().lower()
        at = self._clock()
        self._pair.add(f"{email}\0{address}", at)
        self._address.add(address, at)
        self._account.add(email, at)

    def succeeded(self, email: str, address: str, *, counted: bool = True) -> None:
        """A right password: the pair starts afresh, and the address is trusted.

        ``counted`` says whether `begin` counted this attempt (a password
        remembered from a moment ago is not checked, so it was not).
        """
        email = email.strip().lower()
        pair = f"{email}\0{address}"
        self._pair.clear(pair)
        if counted:
            self._address.forget_one(address)
            self._account.forget_one(email)
        at = self._clock()
        if len(self._trusted) >= _MAX_KEYS:
            self._trusted = {k: t for k, t in self._trusted.items() if t > at}
        self._trusted[pair] = at + TRUSTED_SECONDS

    def _is_trusted(self, pair: str, at: float) -> bool:
        until = self._trusted.get(pair)
        return until is not None and until > at

    async def run_argon2(self, check: Callable[[], bool]) -> bool:
        """Run a password check on a worker thread, a few at a time."""
        return await anyio.to_thread.run_sync(check, limiter=self.argon2)


def too_many_attempts(wait: float) -> problems.Problem:
    return problems.too_many_sign_in_attempts(max(1, math.ceil(wait)))
