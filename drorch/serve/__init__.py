"""``drorch serve``: the long-running controller loop."""
