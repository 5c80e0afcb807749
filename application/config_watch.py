"""The sources' ACL rules as the config file says now: an edited rule applies without a restart.

Only the `acl` rules of declared sources are applied live (through retrieval/access.py); other
changes (paths, new sources, the store) need a restart or a re-index. The file is checked with
one stat per query; a file that no longer parses leaves the last good rules in force and says so
in the log, once per change.
"""

from __future__ import annotations

import logging
import threading

from application.settings import Settings, load_settings
from control.state_file import file_stamp
from ingest.errors import ConfigError
from retrieval.access import SourceRules

log = logging.getLogger(__name__)


class ConfigRules:
    """A RulesProvider (retrieval.access) reading the sources' rules from the config file."""

    def __init__(self, settings: Settings) -> None:
        self._path = settings.config_path
        self._lock = threading.Lock()
        self._key = file_stamp(self._path)
        self._generation = 0
        self._rules: SourceRules = {s.name: s for s in settings.sources}

    def __call__(self) -> tuple[object, SourceRules]:
        with self._lock:
            key = file_stamp(self._path)
            if key != self._key:
                self._key = key
                try:
                    settings = load_settings(self._path)
                except ConfigError as exc:
                    log.error("config changed but cannot be used, the last good ACL rules stay "
                              "in force: %s", exc)
                else:
                    rules = {s.name: s for s in settings.sources}
                    if rules != self._rules:
                        self._rules = rules
                        self._generation += 1
                        log.warning("ACL rules reloaded from %s", self._path)
            return self._generation, self._rules
