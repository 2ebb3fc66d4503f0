"""VirtualBMC's vbmc output, produced by cliff itself, for govbmc's tests.

VirtualBMC's `list` and `show` are both cliff Listers fed by the daemon's
JSON answer ({"header": [...], "rows": [[...], ...]}); this app is the same
two commands with canned data from $ORACLE_DATA, plus `showone`, a ShowOne
(for govbmc's `show -f shell`, which VirtualBMC lacks).

    PYTHONPATH=<cliff checkout> ORACLE_DATA='{"header": [...], "rows": [...]}' \
        python3 cliff_oracle.py list -f value -c Status

The expected outputs in output_test.go were produced this way, with cliff's
master (4.8+: normalised -c names) on Debian bookworm's python3-cliff
dependencies (prettytable 3.6, PyYAML 6.0, Python 3.11). Not run by the tests.
"""

import json
import os
import sys

import stevedore

# cliff master annotates with ExtensionManager[...]; bookworm's stevedore
# predates that.
if not hasattr(stevedore.ExtensionManager, '__class_getitem__'):
    stevedore.ExtensionManager.__class_getitem__ = classmethod(
        lambda cls, item: cls)

from cliff.app import App  # noqa: E402
from cliff.commandmanager import CommandManager  # noqa: E402
from cliff.lister import Lister  # noqa: E402
from cliff.show import ShowOne  # noqa: E402


def _data():
    return json.loads(os.environ['ORACLE_DATA'])


class ListCommand(Lister):
    def take_action(self, args):
        rsp = _data()
        return rsp['header'], sorted(rsp['rows'])


class _NamedCommand:
    """Takes a domain name, as VirtualBMC's show does."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('domain_name')
        return parser


class ShowCommand(_NamedCommand, ListCommand):
    pass


class ShowOneCommand(_NamedCommand, ShowOne):
    def take_action(self, args):
        rows = sorted(_data()['rows'])
        return [r[0] for r in rows], [r[1] for r in rows]


class OracleApp(App):
    def __init__(self):
        cm = CommandManager('govbmc.oracle')
        cm.add_command('list', ListCommand)
        cm.add_command('show', ShowCommand)
        cm.add_command('showone', ShowOneCommand)
        super().__init__(description='oracle', version='0',
                         command_manager=cm, deferred_help=True)


if __name__ == '__main__':
    sys.exit(OracleApp().run(sys.argv[1:]))
