"""Arch -> torch.nn.Module builders. Importing this package imports torch."""
