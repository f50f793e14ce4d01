"""The events inside sessions: browsing, and the view → cart → checkout → purchase funnel.

The per-view choices (which item, how long on it, a click or a wishlist) do not depend on history,
so they are drawn for all candidate sessions at once; the loop in :func:`play` holds only what does:
a visit too close to the user's previous session merges away, a need already met brings no more
visits, a cart persists across sessions until bought or abandoned, and purchases end needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from training.simulate.people import MINUTE, SHORTLIST, Needs, People, Visits
from training.simulate.world import Catalog

SECOND: Final = MINUTE / 60.0
SESSION_GAP: Final = 30 * MINUTE  # the featurizer's gap rule: visits closer than this would merge

# One event: (time in days, event type, user, session id, item index or -1, category or -1, qty)
Step = tuple[float, str, int, str, int, int, int | None]


@dataclass(frozen=True)
class Plan:
    """Per candidate session (S) and per view (V) draws, as Python lists for a fast loop."""

    category: list[int]  # (S,) the session's category
    p_cart: list[float]  # (S,)
    buy_logit: list[float]  # (S,)
    u: list[list[float]]  # (S, 6) uniforms: search, cart, remove, buy, review/share, quantity
    funnel_gap: list[list[float]]  # (S, 3) days: after search, before checkout, before purchase
    view_start: list[int]  # (S + 1,) session s has views view_start[s]:view_start[s + 1]
    item: list[int]  # (V,)
    dwell: list[float]  # (V,) days on the item before the next action
    click: list[bool]  # (V,) arrived from a listing click
    wish: list[bool]  # (V,) saved to the wishlist


def plan_sessions(
    rng: np.random.Generator, people: People, needs: Needs, visits: Visits, catalog: Catalog
) -> Plan:
    """Draw everything about the candidate sessions that does not depend on earlier outcomes."""
    s = visits.user.size
    driven = visits.need >= 0
    need = np.maximum(visits.need, 0)
    intent, vigour = visits.intent, visits.vigour
    # Keen users look at more items; fading users at fewer (the churn warning a model can see).
    fading = vigour**2
    mean_views = people.session_length[visits.user] * (0.7 + 1.3 * intent) * (0.2 + 0.8 * fading)
    views = 1 + rng.poisson(np.maximum(mean_views - 1.0, 0.0))
    favourite = people.tastes[visits.user, rng.integers(0, 2, size=s)]
    browsing = np.where(rng.random(s) < 0.6, favourite, catalog.popular_categories(rng.random(s)))
    need_category = needs.category[need] if needs.user.size else browsing
    category = np.where(driven, need_category, browsing)
    focus = np.where(driven, 0.3 + 0.5 * intent, 0.0)  # share of views on the need's shortlist

    by_view = np.repeat(np.arange(s), views)
    u_pool, u_item = rng.random(by_view.size), rng.random(by_view.size)
    item = catalog.popular_items(u_item)
    focus_v = focus[by_view]
    in_category = u_pool < focus_v + (1.0 - focus_v) * 0.55
    item[in_category] = catalog.items_in(category[by_view][in_category], u_item[in_category])
    listed = u_pool < focus_v
    if listed.any():
        slot = np.minimum((u_item[listed] ** 2 * SHORTLIST).astype(np.int64), SHORTLIST - 1)
        item[listed] = needs.shortlist[need[by_view][listed], slot]
    intent_v = intent[by_view]
    dwell = rng.lognormal(np.log(35.0 * (1.0 + 0.6 * intent_v)), 0.8) * SECOND
    decisive = people.decisiveness[visits.user]
    return Plan(
        category=category.tolist(),
        p_cart=(np.where(driven, 0.05 + 0.5 * intent, 0.02) * fading).tolist(),
        buy_logit=(np.where(driven, -1.2 + 2.0 * intent, -2.0) + decisive).tolist(),
        u=rng.random((s, 6)).tolist(),
        funnel_gap=(
            np.minimum(rng.lognormal(np.log(60.0), 0.6, size=(s, 3)), 600) * SECOND
        ).tolist(),
        view_start=np.concatenate([[0], np.cumsum(views)]).tolist(),
        item=item.tolist(),
        dwell=np.minimum(dwell, 20 * MINUTE).tolist(),
        click=(rng.random(by_view.size) < 0.2).tolist(),
        wish=(rng.random(by_view.size) < 0.02 + 0.06 * intent_v).tolist(),
    )


@dataclass
class _Shopper:
    """What one user's history has decided so far (reset at each new user)."""

    user: int  # within the block
    number: int  # global user number
    met: set[int]  # needs already met by a purchase
    visits: dict[int, int]  # sessions so far per need: a need matures the longer it lasts
    cart: tuple[int, int, int] | None = None  # (item, need, quantity)
    bought: int = -1  # the last item bought
    last_end: float = -math.inf
    sessions: int = 0


def play(plan: Plan, visits: Visits, first_user: int) -> list[Step]:
    """Play the candidate sessions in (user, time) order; return the events in that order.

    User numbers in the events are global: the block's user ``u`` is ``first_user + u``.
    """
    steps: list[Step] = []
    shopper = _Shopper(user=-1, number=-1, met=set(), visits={})
    users, times, owners = visits.user.tolist(), visits.time.tolist(), visits.need.tolist()
    for s, (user, t, need) in enumerate(zip(users, times, owners, strict=True)):
        if user != shopper.user:
            shopper = _Shopper(user=user, number=first_user + user, met=set(), visits={})
        if t < shopper.last_end + SESSION_GAP or need in shopper.met:
            continue
        shopper.last_end = _session(plan, s, t, need, shopper, steps)
    return steps


def _session(plan: Plan, s: int, t: float, need: int, shopper: _Shopper, out: list[Step]) -> float:
    """Append one session's events; return when it ended."""
    user, session = shopper.number, f"u{shopper.number:06d}-s{shopper.sessions}"
    shopper.sessions += 1  # the id is built once per session, not per event: strings are costly
    u_search, u_cart, u_remove, u_buy, u_other, u_qty = plan.u[s]
    if u_search < (0.4 if need >= 0 else 0.15):
        out.append((t, "search", user, session, -1, plan.category[s], None))
        t += plan.funnel_gap[s][0]
    item = -1
    for v in range(plan.view_start[s], plan.view_start[s + 1]):
        item = plan.item[v]
        if plan.click[v]:
            out.append((t, "click", user, session, item, -1, None))
            t += 3 * SECOND
        out.append((t, "view", user, session, item, -1, None))
        if plan.wish[v]:
            t += 8 * SECOND
            out.append((t, "wishlist", user, session, item, -1, None))
        t += plan.dwell[v]
    visits = 0
    if need >= 0:
        visits = shopper.visits[need] = shopper.visits.get(need, 0) + 1
    if u_cart < plan.p_cart[s]:
        quantity = 2 if u_qty < 0.1 else 1
        out.append((t, "add_to_cart", user, session, item, -1, quantity))
        shopper.cart = (item, need, quantity)
        t += 10 * SECOND
        if u_remove < 0.08:
            out.append((t, "remove_from_cart", user, session, item, -1, quantity))
            shopper.cart = None
    if shopper.cart is not None:
        cart_item, cart_need, quantity = shopper.cart
        logit = plan.buy_logit[s] + 0.4 * min(visits, 4)
        if u_buy < 1.0 / (1.0 + math.exp(-logit)):
            t += plan.funnel_gap[s][1]
            out.append((t, "checkout", user, session, cart_item, -1, quantity))
            t += plan.funnel_gap[s][2]
            out.append((t, "purchase", user, session, cart_item, -1, quantity))
            if cart_need >= 0:
                shopper.met.add(cart_need)  # the need is met: no more visits for it
            shopper.bought, shopper.cart = cart_item, None
        elif u_buy > 0.8:
            shopper.cart = None  # abandoned for good
    elif shopper.bought >= 0 and u_other < 0.05:
        out.append((t, "review", user, session, shopper.bought, -1, None))
    elif item >= 0 and u_other > 0.99:
        out.append((t, "share", user, session, item, -1, None))
    return t
