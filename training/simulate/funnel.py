"""What history decides, one candidate session after another: which visits happen, and the funnel.

A visit too close to the user's previous session merges away (it would not be a new session), a
need already met brings no more visits, a cart persists across sessions until it is bought or
abandoned, and a purchase ends the need behind it. Browsing itself was laid out beforehand
(:mod:`training.simulate.sessions`); this loop adds the cart → checkout → purchase tail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from training.simulate.people import MINUTE, Visits
from training.simulate.sessions import (
    ADD_TO_CART,
    CHECKOUT,
    PURCHASE,
    REMOVE_FROM_CART,
    REVIEW,
    SECOND,
    SHARE,
    Plan,
)

SESSION_GAP: Final = 30 * MINUTE  # the featurizer's gap rule: visits closer than this would merge


@dataclass
class Outcome:
    """Sessions that happened (candidate index, the user's session number) and their tails."""

    kept: list[int] = field(default_factory=list)
    number: list[int] = field(default_factory=list)
    # Tail events, one entry per event in each list:
    session: list[int] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    item: list[int] = field(default_factory=list)
    quantity: list[int] = field(default_factory=list)  # -1: none

    def add(self, s: int, t: float, kind: int, item: int, quantity: int = -1) -> None:
        self.session.append(s)
        self.time.append(t)
        self.kind.append(kind)
        self.item.append(item)
        self.quantity.append(quantity)


@dataclass
class _Shopper:
    """What one user's history has decided so far (a fresh one for each user)."""

    met: set[int] = field(default_factory=set)  # needs already met by a purchase
    visits: dict[int, int] = field(default_factory=dict)  # sessions so far per need
    cart: tuple[int, int, int] | None = None  # (item, need, quantity)
    bought: int = -1  # the last item bought
    last_end: float = -math.inf
    sessions: int = 0


def play(plan: Plan, visits: Visits) -> Outcome:
    """Play the candidate sessions in (user, time) order."""
    out = Outcome()
    shopper, current = _Shopper(), -1
    users, times, owners = visits.user.tolist(), visits.time.tolist(), visits.need.tolist()
    for s, (user, t, need) in enumerate(zip(users, times, owners, strict=True)):
        if user != current:
            shopper, current = _Shopper(), user
        if t < shopper.last_end + SESSION_GAP or need in shopper.met:
            continue
        out.kept.append(s)
        out.number.append(shopper.sessions)
        shopper.sessions += 1
        shopper.last_end = _tail(plan, s, need, shopper, out)
    return out


def _tail(plan: Plan, s: int, need: int, shopper: _Shopper, out: Outcome) -> float:
    """Cart, checkout, purchase (or a review or share) after the browsing; return the end."""
    t = plan.browse_end[s]
    u_cart, u_remove, u_buy, u_other, u_qty = plan.u[s]
    item = plan.last_item[s]
    visits = 0
    if need >= 0:
        # A need matures: the more sessions it has driven, the likelier the purchase.
        visits = shopper.visits[need] = shopper.visits.get(need, 0) + 1
    if u_cart < plan.p_cart[s]:
        quantity = 2 if u_qty < 0.1 else 1
        out.add(s, t, ADD_TO_CART, item, quantity)
        shopper.cart = (item, need, quantity)
        t += 10 * SECOND
        if u_remove < 0.08:
            out.add(s, t, REMOVE_FROM_CART, item, quantity)
            shopper.cart = None
    if shopper.cart is not None:
        cart_item, cart_need, quantity = shopper.cart
        logit = plan.buy_logit[s] + 0.4 * min(visits, 4)
        if u_buy < 1.0 / (1.0 + math.exp(-logit)):
            t += plan.funnel_gap[s][0]
            out.add(s, t, CHECKOUT, cart_item, quantity)
            t += plan.funnel_gap[s][1]
            out.add(s, t, PURCHASE, cart_item, quantity)
            if cart_need >= 0:
                shopper.met.add(cart_need)  # the need is met: no more visits for it
            shopper.bought, shopper.cart = cart_item, None
        elif u_buy > 0.8:
            shopper.cart = None  # abandoned for good
    elif shopper.bought >= 0 and u_other < 0.05:
        out.add(s, t, REVIEW, shopper.bought)
    elif u_other > 0.99:
        out.add(s, t, SHARE, item)
    return t
