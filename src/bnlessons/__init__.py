"""bnlessons: the typed numpy core behind the lessons on matrix arithmetic and batch norm."""

__version__ = "0.1.0"
