"""hotline: a direct, always-tested, end-to-end secured line between parties that do not
trust each other, with a tamper-evident shared record and automatic deconfliction."""

__version__ = "0.1.0"
