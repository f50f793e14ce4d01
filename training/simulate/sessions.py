"""Browsing inside sessions: what each candidate session would look like if it happens.

Which item each view is about, how long the user stays on it, a listing click before it, a
wishlist save after it, a search first: none of it depends on history, so it is drawn and laid out
in time for all candidate sessions of a block of users at once. :mod:`training.simulate.funnel`
then decides, session by session, which sessions happen and what cart/checkout/purchase follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from training.simulate.people import MINUTE, SHORTLIST, Needs, People, Visits
from training.simulate.world import Catalog

SECOND: Final = MINUTE / 60.0

KINDS: Final = (
    "search", "click", "view", "wishlist", "add_to_cart", "remove_from_cart", "checkout",
    "purchase", "review", "share",
)  # fmt: skip
SEARCH, CLICK, VIEW, WISHLIST, ADD_TO_CART, REMOVE_FROM_CART, CHECKOUT, PURCHASE, REVIEW, SHARE = (
    range(len(KINDS))
)


@dataclass(frozen=True)
class Plan:
    """Per candidate session (S) draws as Python lists for the funnel loop, and their browsing."""

    category: list[int]  # (S,) the session's category
    p_cart: list[float]  # (S,)
    buy_logit: list[float]  # (S,)
    u: list[list[float]]  # (S, 5) uniforms: cart, remove, buy, review/share, quantity
    funnel_gap: list[list[float]]  # (S, 2) days: before checkout, before purchase
    last_item: list[int]  # (S,) the item viewed last, which a cart or share is about
    browse_end: list[float]  # (S,) when the browsing (search and views) ends
    browsing: Browsing


@dataclass(frozen=True)
class Browsing:
    """The search, click, view and wishlist events of all candidate sessions (B events)."""

    session: np.ndarray  # (B,) candidate session index
    time: np.ndarray  # (B,) days
    kind: np.ndarray  # (B,) index into KINDS
    item: np.ndarray  # (B,) item index, -1 for a search
    category: np.ndarray  # (B,) the session's category (used by searches)


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
    u = rng.random((s, 6))
    gaps = np.minimum(rng.lognormal(np.log(60.0), 0.6, size=(s, 3)), 600) * SECOND
    view_start = np.concatenate([[0], np.cumsum(views)])
    click = rng.random(by_view.size) < 0.2
    wish = rng.random(by_view.size) < 0.02 + 0.06 * intent_v
    searched = u[:, 0] < np.where(driven, 0.4, 0.15)
    browse = _browsing(
        visits.time,
        searched,
        gaps[:, 0],
        category,
        view_start,
        item,
        np.minimum(dwell, 20 * MINUTE),
        click,
        wish,
    )
    return Plan(
        category=category.tolist(),
        p_cart=(np.where(driven, 0.05 + 0.5 * intent, 0.02) * fading).tolist(),
        buy_logit=(np.where(driven, -1.2 + 2.0 * intent, -2.0) + decisive).tolist(),
        u=u[:, 1:].tolist(),
        funnel_gap=gaps[:, 1:].tolist(),
        last_item=item[view_start[1:] - 1].tolist(),
        browse_end=browse[1].tolist(),
        browsing=browse[0],
    )


def _browsing(
    start: np.ndarray,  # (S,) session start, days
    searched: np.ndarray,  # (S,) bool: the session opens with a search
    search_gap: np.ndarray,  # (S,) days from the search to the first view
    category: np.ndarray,  # (S,)
    view_start: np.ndarray,  # (S + 1,) session s has views view_start[s]:view_start[s + 1]
    item: np.ndarray,  # (V,)
    dwell: np.ndarray,  # (V,) days on the item before the next view
    click: np.ndarray,  # (V,) bool: arrived from a listing click (3 s before the view)
    wish: np.ndarray,  # (V,) bool: saved to the wishlist (8 s after the view)
) -> tuple[Browsing, np.ndarray]:
    """Lay out each session as [search?] + per view [click?, view, wishlist?]; time them."""
    s, v = start.size, item.size
    session_of_view = np.repeat(np.arange(s), np.diff(view_start))
    # Slots: one search slot per session, then three per view, in session order.
    n_slots = s + 3 * v
    present = np.zeros(n_slots, dtype=bool)
    kind = np.zeros(n_slots, dtype=np.int64)
    slot_item = np.full(n_slots, -1, dtype=np.int64)
    step = np.zeros(n_slots)  # (slots,) days from this event to the next one in the session
    session = np.zeros(n_slots, dtype=np.int64)
    first = np.arange(s) + 3 * view_start[:-1]  # (S,) each session's search slot
    present[first], kind[first], step[first], session[first] = (
        searched,
        SEARCH,
        search_gap,
        np.arange(s),
    )
    base = session_of_view + 1 + 3 * np.arange(v)  # (V,) each view's click slot
    for offset, here, what, after in (
        (0, click, CLICK, 3 * SECOND),
        (1, np.ones(v, dtype=bool), VIEW, np.where(wish, 8 * SECOND, dwell)),
        (2, wish, WISHLIST, dwell),
    ):
        slots = base + offset
        present[slots], kind[slots], slot_item[slots] = here, what, item
        step[slots], session[slots] = after, session_of_view
    step = np.where(present, step, 0.0)
    done = np.cumsum(step)  # (slots,) time through the end of each slot, over all sessions
    before = done - step  # exclusive: time before each slot
    origin = before[first]  # (S,) where each session's clock starts
    time = start[session] + (before - origin[session])
    end = start + (done[np.append(first[1:], n_slots) - 1] - origin)
    browsing = Browsing(
        session=session[present],
        time=time[present],
        kind=kind[present],
        item=slot_item[present],
        category=category[session[present]],
    )
    return browsing, end
