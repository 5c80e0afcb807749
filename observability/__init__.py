"""What the service tells its operators about itself: Prometheus metrics (observability/metrics.py).

The lowest layer: every package may record a measurement here; this package imports none of
them.
"""
