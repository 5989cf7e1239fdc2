"""zige (资格): pension-recipient eligibility certification by data comparison."""

__version__ = "0.1.0"
