"""The HTTP layer's new home (routers, dependencies, errors). The older routers still live in api/routers/ and move
here when nobody else is editing them."""
