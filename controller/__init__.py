"""rktctl: a single-host, level-triggered reconciliation controller for rkt pods."""

__version__ = "0.1.0"
