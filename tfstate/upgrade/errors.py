"""The error `tfstate upgrade` raises for input it cannot upgrade."""


class UpgradeError(ValueError):
    """The input cannot be upgraded (unreadable, unparseable, too large, or the output would not parse);
    nothing was written."""
