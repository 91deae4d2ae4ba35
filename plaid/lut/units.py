"""The latency units a table measures, as the spaces define them (:mod:`plaid.spaces.units`
has the :class:`Unit` record and how units are built; each space says which units its
members are made of). ``arch_units`` splits one architecture into its units (what the
predictor sums); ``space_units`` lists every unit any architecture of the space can
contain (what a table must measure)."""

from __future__ import annotations

from plaid.spaces.base import measurable_spaces, said
from plaid.spaces.units import HEAD_CLASSES, UNIT_VERSION, Unit, down, unit_counts

__all__ = ["HEAD_CLASSES", "UNIT_VERSION", "Unit", "arch_units", "check_space", "down", "space_units",
           "unit_counts"]


def check_space(space) -> None:
    """A one-line usage error unless ``space`` says what latency units it is made of."""
    if not space.measurable:
        from plaid.errors import UsageError

        raise UsageError(f"latency tables cover the spaces {said(measurable_spaces())}; "
                         f"{space.name!r} is not supported yet")


def arch_units(space, arch, resolution: tuple[int, int]) -> list[Unit]:
    """The units ``arch`` is made of, in order (stem, blocks, head)."""
    check_space(space)
    return space.units(arch, tuple(resolution))


def space_units(space, resolution: tuple[int, int]) -> list[Unit]:
    """Every distinct unit that some member of ``space`` contains at ``resolution``."""
    check_space(space)
    return space.all_units(tuple(resolution))
