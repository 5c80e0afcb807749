"""Errors raised by ingestion.

IngestError
├── ConfigError        the configuration (sources, ACL rules, limits) is invalid
├── ParserUnavailable  the parser cannot run at all (a missing library or model): the build stops
└── ParseError         one file could not be parsed or yielded no text (reported; the batch goes on)
    └── LimitExceeded  the file went over one of its limits (size, inflation, memory, time)
"""


class IngestError(Exception):
    """Base class of ingestion errors."""


class ConfigError(IngestError):
    """The configuration is invalid; the message says which setting and how to fix it."""


class ParserUnavailable(IngestError):
    """The parser cannot load or its process cannot start: every file would fail alike."""


class ParseError(IngestError):
    """A file could not be parsed, or yielded no text."""


class LimitExceeded(ParseError):
    """A file went over one of its limits; the message names the limit and its value."""
