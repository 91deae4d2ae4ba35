"""Accuracy for the search: ``accuracy(arch) -> float`` (top-1 in [0, 1], higher is better).

- :mod:`plaid.train.datasets` loads the proxy datasets (``digits`` embedded, ``cifar10:PATH``,
  ``imagefolder:PATH``) into normalised NCHW arrays; a package with one module per loader;
- :mod:`plaid.train.proxy` is the built-in proxy trainer (SGD + cosine, fixed seeds);
- :mod:`plaid.train.evaluators` holds the evaluators the search engine calls, registered by
  name: ``proxy`` (built-in trainer), ``command`` (the user's own training command, run by
  :mod:`plaid.train.command`) and ``table`` (accuracies read from a CSV/JSON file by
  :mod:`plaid.train.tables`, for benchmarking).

Importing this package (or the evaluators module) does not import torch; the trainer and the
image resizing import it when they run.
"""
