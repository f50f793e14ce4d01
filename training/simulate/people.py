"""One simulated user: when they visit, what need drives each visit, and the events of each session.

Times are in days since the start of the simulation. Visits come from two thinned Poisson
processes: background browsing, and *needs*: a need (category, shortlist of items) makes a latent
intent ``I(t)`` rise over hours and decay over days, and while it lasts the user visits at a rate
proportional to it. Everything that does not depend on what happened before is drawn vectorised
per user; one short loop over sessions then decides carts and purchases, which end a need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from training.simulate.world import RHYTHM_MAX, Catalog, SimConfig, rhythm

MINUTE: Final = 1.0 / 1440.0
SESSION_GAP: Final = 30 * MINUTE  # the featurizer's gap rule: visits closer than this would merge
SHORTLIST: Final = 4  # items a need narrows down to
WARN_FLOOR: Final = 0.2  # activity left, relative, just before a churner stops

# One event: (time in days, event type, session number, item index or -1, category or -1, qty)
Step = tuple[float, str, int, int, int, int | None]


@dataclass(frozen=True)
class Person:
    """A user's hidden traits: when they are around, how active, how decisive, their tastes."""

    join: float
    stop: float  # churn time (days); the end of the period for users who stay
    churns: bool
    warn: float  # days of decline before ``stop`` (churners only)
    browse_rate: float  # background sessions a day
    need_rate: float  # new needs a day
    session_length: float  # typical views per session
    decisiveness: float  # logit offset on buying
    shift_hours: float  # personal time-of-day shift
    tastes: tuple[int, int]  # favourite categories

    @classmethod
    def draw(cls, rng: np.random.Generator, config: SimConfig, catalog: Catalog) -> Person:
        """Traits for one user (heavy-tailed activity: most users visit rarely, a few often)."""
        days = float(config.days)
        join = rng.uniform(0.0, 0.7 * days) if rng.random() < config.new_user_fraction else 0.0
        churns = bool(rng.random() < config.churn_fraction)
        stop = rng.uniform(join + 0.3 * (days - join), days - 0.25) if churns else days
        stop = max(stop, join + 0.25)
        tastes = catalog.popular_categories(rng.random(2))
        return cls(
            join=join,
            stop=stop,
            churns=churns,
            warn=min(rng.uniform(2.0, 6.0), stop - join),
            browse_rate=float(np.clip(rng.lognormal(math.log(0.25), 0.9), 0.02, 4.0)),
            need_rate=float(np.clip(rng.lognormal(math.log(0.1), 0.5), 0.01, 1.0)),
            session_length=float(rng.lognormal(math.log(3.5), 0.35)),
            decisiveness=float(rng.normal(0.0, 0.6)),
            shift_hours=float(rng.normal(0.0, 1.5)),
            tastes=(int(tastes[0]), int(tastes[1])),
        )

    def vigour(self, t: np.ndarray) -> np.ndarray:
        """1 while active; falls to WARN_FLOOR over a churner's last ``warn`` days; 0 outside."""
        alive = (t >= self.join) & (t < self.stop)
        if not self.churns:
            return alive.astype(np.float64)
        fading = np.clip((self.stop - t) / self.warn, 0.0, 1.0)
        return np.where(alive, WARN_FLOOR + (1.0 - WARN_FLOOR) * fading, 0.0)


@dataclass(frozen=True)
class Needs:
    """A user's needs (latent purchase intents): start, rise and decay, category, shortlist."""

    start: np.ndarray  # (K,) days
    rise: np.ndarray  # (K,) days
    decay: np.ndarray  # (K,) days
    rate: np.ndarray  # (K,) visits a day at peak intent
    category: np.ndarray  # (K,)
    shortlist: np.ndarray  # (K, SHORTLIST) item indices

    @classmethod
    def draw(cls, rng: np.random.Generator, person: Person, catalog: Catalog) -> Needs:
        """Needs arise as a Poisson process, rarer as a churner fades."""
        span = person.stop - person.join
        start = rng.uniform(person.join, person.stop, size=rng.poisson(person.need_rate * span))
        start = np.sort(start[rng.random(start.size) < person.vigour(start)])
        k = start.size
        category = np.where(
            rng.random(k) < 0.7,
            np.array(person.tastes)[rng.integers(0, 2, size=k)],
            catalog.popular_categories(rng.random(k)),
        )
        shortlist = catalog.items_in(np.repeat(category, SHORTLIST), rng.random(k * SHORTLIST))
        return cls(
            start=start,
            rise=rng.uniform(0.05, 0.5, size=k),
            decay=rng.uniform(0.7, 3.0, size=k),
            rate=rng.lognormal(math.log(1.6), 0.4, size=k),
            category=category,
            shortlist=shortlist.reshape(k, SHORTLIST),
        )

    def intent(self, need: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Intent of need ``need[i]`` at time ``t[i]``: rises, peaks at 1, decays; 0 before it."""
        a, b = 1.0 / self.rise[need], 1.0 / self.decay[need]
        age = np.maximum(t - self.start[need], 0.0)
        peak_age = np.log((a + b) / b) / a
        shape = (1.0 - np.exp(-a * age)) * np.exp(-b * age)
        peak = (1.0 - np.exp(-a * peak_age)) * np.exp(-b * peak_age)
        return shape / peak


def visits(
    rng: np.random.Generator, person: Person, needs: Needs, start_ms: int
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate session starts (days, sorted) and the need behind each (-1: just browsing)."""
    span = person.stop - person.join
    # Thinning: draw at the peak rate, keep each with probability rate(t) / peak rate.
    browse = rng.uniform(
        person.join, person.stop, size=rng.poisson(person.browse_rate * RHYTHM_MAX * span)
    )
    rate = rhythm(browse, start_ms, person.shift_hours) * person.vigour(browse)
    browse = browse[rng.random(browse.size) * RHYTHM_MAX < rate]
    horizon = needs.rise + 4.0 * needs.decay
    counts = rng.poisson(needs.rate * RHYTHM_MAX * horizon)
    need = np.repeat(np.arange(needs.start.size), counts)
    t = needs.start[need] + rng.random(need.size) * horizon[need]
    accept = rhythm(t, start_ms, person.shift_hours) * person.vigour(t) * needs.intent(need, t)
    keep = rng.random(need.size) * RHYTHM_MAX < accept  # intent <= 1, so this is thinning too
    times = np.concatenate([browse, t[keep]])
    owner = np.concatenate([np.full(browse.size, -1), need[keep]])
    order = np.argsort(times, kind="stable")
    return times[order], owner[order]
