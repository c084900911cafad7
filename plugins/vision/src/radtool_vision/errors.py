"""User errors: the core's :class:`radtool.errors.UserError`, re-exported for this plugin.

The core CLI turns a UserError into one line on stderr and exit status 2; the plugin's own commands
do the same (``cli/_util.py``), so ``python -m radtool_vision`` behaves alike.
"""

from radtool.errors import UserError, missing_column, missing_file

__all__ = ["UserError", "missing_column", "missing_file"]
