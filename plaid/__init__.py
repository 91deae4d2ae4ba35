"""plaid: platform-aware architecture search (Partial Order Pruning) and deployment.

``import plaid`` stays light: no torch, no TensorFlow. Heavy stacks are imported inside
the functions that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
