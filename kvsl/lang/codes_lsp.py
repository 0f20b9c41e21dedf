"""Diagnostic codes KVS900-KVS909, owned by the language server `kvsl lsp` (plain data)."""

from __future__ import annotations

from kvsl.lang.code_entry import Code
from kvsl.lang.diagnostics import Severity

LSP_CODES: tuple[Code, ...] = (
    Code(
        "KVS900",
        "the language server cannot start",
        Severity.ERROR,
        "`kvsl lsp` is built on pygls, the Python language-server library, which kvsl "
        "depends on. When it cannot be imported (an environment installed without kvsl's "
        "dependencies, or a broken install), the server cannot start; the command exits "
        "with status 3 instead of printing a traceback into the editor's log.",
        "pip install --no-deps kvsl && kvsl lsp",
        "pip install kvsl && kvsl lsp",
    ),
)
