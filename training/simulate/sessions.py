"""The events inside a user's sessions: browsing, the view → cart → checkout → purchase funnel.

The per-view choices (which item, how long on it, a click or a wishlist) do not depend on history,
so they are drawn for all of a user's candidate sessions at once; the loop in :func:`user_steps`
holds only what does: a session too close to the previous one merges away, a need already met brings
no more visits, a cart persists across sessions until bought or abandoned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from training.simulate.user import MINUTE, SESSION_GAP, SHORTLIST, Needs, Person, Step
from training.simulate.world import Catalog

SECOND: Final = MINUTE / 60.0


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
    rng: np.random.Generator,
    person: Person,
    needs: Needs,
    catalog: Catalog,
    times: np.ndarray,
    owner: np.ndarray,
) -> Plan:
    """Draw everything about the candidate sessions that does not depend on earlier outcomes."""
    s = times.size
    driven = owner >= 0
    need = np.maximum(owner, 0)
    intent = np.where(driven, needs.intent(need, times) if needs.start.size else 0.0, 0.0)
    vigour = person.vigour(times)
    # Keen users look at more items; fading users at fewer.
    mean_views = person.session_length * (0.7 + 1.3 * intent) * (0.3 + 0.7 * vigour)
    views = 1 + rng.poisson(np.maximum(mean_views - 1.0, 0.0))
    browse_category = np.where(
        rng.random(s) < 0.6,
        np.array(person.tastes)[rng.integers(0, 2, size=s)],
        catalog.popular_categories(rng.random(s)),
    )
    category = np.where(driven, needs.category[need] if needs.start.size else 0, browse_category)
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
    return Plan(
        category=category.tolist(),
        p_cart=(np.where(driven, 0.05 + 0.5 * intent, 0.02) * vigour).tolist(),
        buy_logit=(np.where(driven, -1.2 + 2.0 * intent, -1.5) + person.decisiveness).tolist(),
        u=rng.random((s, 6)).tolist(),
        funnel_gap=(rng.lognormal(np.log(60.0), 0.6, size=(s, 3)) * SECOND).tolist(),
        view_start=np.concatenate([[0], np.cumsum(views)]).tolist(),
        item=item.tolist(),
        dwell=np.minimum(dwell, 20 * MINUTE).tolist(),
        click=(rng.random(by_view.size) < 0.2).tolist(),
        wish=(rng.random(by_view.size) < 0.02 + 0.06 * intent_v).tolist(),
    )


def user_steps(plan: Plan, times: list[float], owner: list[int], needs: int) -> list[Step]:
    """Play the candidate sessions in time order; return the user's events in order."""
    steps: list[Step] = []
    met = [False] * needs
    visits = [0] * needs  # sessions so far per need: a need matures the longer it lasts
    cart: tuple[int, int, int] | None = None  # (item, need, quantity)
    bought: list[int] = []
    last_end = -math.inf
    number = 0
    for s, t in enumerate(times):
        need = owner[s]
        if t < last_end + SESSION_GAP or (need >= 0 and met[need]):
            continue
        session, number = number, number + 1
        u_search, u_cart, u_remove, u_buy, u_other, u_qty = plan.u[s]
        category = plan.category[s]
        if u_search < (0.4 if need >= 0 else 0.15):
            steps.append((t, "search", session, -1, category, None))
            t += plan.funnel_gap[s][0]
        item = -1
        for v in range(plan.view_start[s], plan.view_start[s + 1]):
            item = plan.item[v]
            if plan.click[v]:
                steps.append((t, "click", session, item, -1, None))
                t += 3 * SECOND
            steps.append((t, "view", session, item, -1, None))
            if plan.wish[v]:
                t += 8 * SECOND
                steps.append((t, "wishlist", session, item, -1, None))
            t += plan.dwell[v]
        if need >= 0:
            visits[need] += 1
        if u_cart < plan.p_cart[s]:
            quantity = 2 if u_qty < 0.1 else 1
            steps.append((t, "add_to_cart", session, item, -1, quantity))
            cart = (item, need, quantity)
            t += 10 * SECOND
            if u_remove < 0.08:
                steps.append((t, "remove_from_cart", session, item, -1, quantity))
                cart = None
        if cart is not None:
            logit = plan.buy_logit[s] + (0.4 * min(visits[need], 4) if need >= 0 else 0.0)
            if u_buy < 1.0 / (1.0 + math.exp(-logit)):
                t += plan.funnel_gap[s][1]
                steps.append((t, "checkout", session, cart[0], -1, cart[2]))
                t += plan.funnel_gap[s][2]
                steps.append((t, "purchase", session, cart[0], -1, cart[2]))
                if cart[1] >= 0:
                    met[cart[1]] = True  # the need is met: no more visits for it
                bought.append(cart[0])
                cart = None
            elif u_buy > 0.85:
                cart = None  # abandoned for good
        elif bought and u_other < 0.05:
            steps.append((t, "review", session, bought[-1], -1, None))
        elif item >= 0 and u_other > 0.99:
            steps.append((t, "share", session, item, -1, None))
        last_end = t
    return steps
