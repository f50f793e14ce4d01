"""A synthetic clickstream with a learnable but latent signal, for demos, tests and benchmarks.

Each user browses in sessions that follow the hour-of-day and weekday rhythm. Now and then a *need*
appears (latent: never written into the events): purchase intent rises over hours and decays over
days; meanwhile the user comes back more often, views more, stays within one category, returns to a
shortlist of items, carts one and, the stronger and older the need, the likelier buys it; a purchase
ends the need. Churners fade over their last days (rarer, shorter sessions, fewer carts), then stop.
Items have long-tailed popularity and stable prices around their category's price level.

>>> events = simulate(SimConfig(users=20, days=3, seed=1))
>>> events == simulate(SimConfig(users=20, days=3, seed=1)), events[0].event_id.startswith("sim-1-")
(True, True)
"""

from training.simulate.run import main, simulate
from training.simulate.world import SimConfig

__all__ = ["SimConfig", "main", "simulate"]
