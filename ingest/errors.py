"""Errors raised by ingestion.

IngestError
├── ConfigError       the configuration (sources, ACL rules) is invalid
└── ParseError        one file could not be parsed or yielded no text (reported; the batch goes on)
"""


class IngestError(Exception):
    """Base class of ingestion errors."""


class ConfigError(IngestError):
    """The configuration is invalid; the message says which setting and how to fix it."""


class ParseError(IngestError):
    """A file could not be parsed, or yielded no text."""
