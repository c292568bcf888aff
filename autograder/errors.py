"""The one root exception of the project and its few specialisations.

Every message names the file (and the cell, where there is one) and says what is wrong,
so the CLI can print it as a single line.
"""

from __future__ import annotations


class AutograderError(Exception):
    """Root of every error the autograder reports to a user."""


class ConfigError(AutograderError):
    """The course configuration is missing or invalid."""


class NotebookError(AutograderError):
    """A notebook is unreadable, invalid, or its nbgrader metadata is inconsistent."""


class CellExecutionError(NotebookError):
    """A cell failed while a notebook was executed."""


class DatasetError(AutograderError):
    """A dataset source is missing, corrupt, or its content is not what was expected."""


class Interrupted(AutograderError):
    """The user stopped a batch (Ctrl-C); what had finished is kept."""
