"""The simulated users: hidden traits, latent needs, and when each of them visits the shop.

Everything here is an array over a block of users (U), their needs (K) or their candidate visits
(S), because numpy pays per call, not per element: one user at a time cost ~1 ms of overhead each.
Times are in days since the start. Visits come from two thinned Poisson processes: background
browsing, and *needs*: a need (category, shortlist of items) makes a latent intent ``I(t)`` rise
over hours and decay over days, and while it lasts the user visits at a rate proportional to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from training.simulate.world import RHYTHM_MAX, Catalog, SimConfig, rhythm

MINUTE: Final = 1.0 / 1440.0
SHORTLIST: Final = 4  # items a need narrows down to
WARN_FLOOR: Final = 0.15  # activity left, relative, just before a churner stops


@dataclass(frozen=True)
class People:
    """Hidden traits of U users: when they are around, how active and decisive, their tastes."""

    join: np.ndarray  # (U,) days
    stop: np.ndarray  # (U,) churn time; the end of the period for users who stay
    churns: np.ndarray  # (U,) bool
    warn: np.ndarray  # (U,) days of decline before ``stop`` (churners)
    browse_rate: np.ndarray  # (U,) background sessions a day
    need_rate: np.ndarray  # (U,) new needs a day
    session_length: np.ndarray  # (U,) typical views per session
    decisiveness: np.ndarray  # (U,) logit offset on buying
    shift_hours: np.ndarray  # (U,) personal time-of-day shift
    tastes: np.ndarray  # (U, 2) favourite categories

    @classmethod
    def draw(
        cls, rng: np.random.Generator, users: int, config: SimConfig, catalog: Catalog
    ) -> People:
        """Traits for ``users`` users (heavy-tailed activity: most visit rarely, a few often)."""
        days = float(config.days)
        new = rng.random(users) < config.new_user_fraction
        join = np.where(new, rng.uniform(0.0, 0.7 * days, size=users), 0.0)
        churns = rng.random(users) < config.churn_fraction
        leave = join + rng.uniform(0.3, 1.0, size=users) * (days - 0.25 - join)
        stop = np.maximum(np.where(churns, leave, days), join + 0.25)
        return cls(
            join=join,
            stop=stop,
            churns=churns,
            warn=np.minimum(rng.uniform(2.0, 6.0, size=users), stop - join),
            browse_rate=np.clip(rng.lognormal(math.log(0.45), 0.9, size=users), 0.02, 6.0),
            need_rate=np.clip(rng.lognormal(math.log(0.09), 0.5, size=users), 0.01, 1.0),
            session_length=rng.lognormal(math.log(3.5), 0.35, size=users),
            decisiveness=rng.normal(0.0, 0.6, size=users),
            shift_hours=rng.normal(0.0, 1.5, size=users),
            tastes=catalog.popular_categories(rng.random((users, 2))),
        )

    def vigour(self, user: np.ndarray, t: np.ndarray) -> np.ndarray:
        """1 while active; down to WARN_FLOOR over a churner's last ``warn`` days; 0 outside."""
        stop = self.stop[user]
        alive = (t >= self.join[user]) & (t < stop)
        fading = np.clip((stop - t) / self.warn[user], 0.0, 1.0)
        level = np.where(self.churns[user], WARN_FLOOR + (1.0 - WARN_FLOOR) * fading, 1.0)
        return np.where(alive, level, 0.0)

    def uniform_times(
        self, rng: np.random.Generator, rate: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """A homogeneous Poisson process of ``rate[u]`` a day over each user's active span."""
        span = self.stop - self.join
        user = np.repeat(np.arange(span.size), rng.poisson(rate * span))
        return user, self.join[user] + rng.random(user.size) * span[user]


@dataclass(frozen=True)
class Needs:
    """K latent purchase intents: whose, when, how fast they rise and decay, category, shortlist."""

    user: np.ndarray  # (K,) sorted
    start: np.ndarray  # (K,) days
    rise: np.ndarray  # (K,) days
    decay: np.ndarray  # (K,) days
    rate: np.ndarray  # (K,) visits a day at peak intent
    category: np.ndarray  # (K,)
    shortlist: np.ndarray  # (K, SHORTLIST) item indices

    @classmethod
    def draw(cls, rng: np.random.Generator, people: People, catalog: Catalog) -> Needs:
        """Needs arise as a Poisson process per user, rarer as a churner fades."""
        user, start = people.uniform_times(rng, people.need_rate)
        keep = rng.random(user.size) < people.vigour(user, start)
        user, start = user[keep], start[keep]
        k = user.size
        favourite = people.tastes[user, rng.integers(0, 2, size=k)]
        category = np.where(
            rng.random(k) < 0.7, favourite, catalog.popular_categories(rng.random(k))
        )
        # A need's shortlist mixes bestsellers with the category's long tail.
        in_category = np.repeat(category, SHORTLIST)
        u = rng.random(k * SHORTLIST)
        shortlist = np.where(
            rng.random(k * SHORTLIST) < 0.5,
            catalog.items_in(in_category, u),
            catalog.any_items_in(in_category, u),
        )
        return cls(
            user=user,
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


@dataclass(frozen=True)
class Visits:
    """S candidate session starts, sorted by (user, time), with the need behind each (-1: none)."""

    user: np.ndarray  # (S,)
    time: np.ndarray  # (S,) days
    need: np.ndarray  # (S,) index into Needs, or -1 for plain browsing
    intent: np.ndarray  # (S,) the need's intent at the visit (0 when browsing)
    vigour: np.ndarray  # (S,)

    @classmethod
    def draw(cls, rng: np.random.Generator, people: People, needs: Needs, start_ms: int) -> Visits:
        """Thinning: draw at the peak rate, keep each with probability rate(t) / peak rate."""
        b_user, b_time = people.uniform_times(rng, people.browse_rate * RHYTHM_MAX)
        rate = rhythm(b_time, start_ms, people.shift_hours[b_user]) * people.vigour(b_user, b_time)
        keep = rng.random(b_user.size) * RHYTHM_MAX < rate
        b_user, b_time = b_user[keep], b_time[keep]

        horizon = needs.rise + 4.0 * needs.decay
        need = np.repeat(np.arange(needs.user.size), rng.poisson(needs.rate * RHYTHM_MAX * horizon))
        n_user = needs.user[need]
        n_time = needs.start[need] + rng.random(need.size) * horizon[need]
        intent = needs.intent(need, n_time)
        rate = rhythm(n_time, start_ms, people.shift_hours[n_user]) * people.vigour(n_user, n_time)
        keep = rng.random(need.size) * RHYTHM_MAX < rate * intent  # intent <= 1: thinning too

        user = np.concatenate([b_user, n_user[keep]])
        time = np.concatenate([b_time, n_time[keep]])
        order = np.lexsort((time, user))
        user, time = user[order], time[order]
        return cls(
            user=user,
            time=time,
            need=np.concatenate([np.full(b_user.size, -1), need[keep]])[order],
            intent=np.concatenate([np.zeros(b_user.size), intent[keep]])[order],
            vigour=people.vigour(user, time),
        )
