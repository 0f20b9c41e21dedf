"""`kvsl lsp`: a language server for `.kvs` specs, over stdio (pygls).

The editor wing sits on the front end alone, like `kvsl check`: it imports `kvsl.lang`,
`kvsl.builtin` and `kvsl.styles` (for style descriptions), never torch, transformers,
openai, the engine, the eval or the teacher. Its modules:

    positions.py   kvsl spans (1-based line:col, code points) ↔ LSP ranges (0-based, UTF-16)
    analysis.py    check an open document (unsaved text) with its `extends` chain
    schema.py      what the checker's key schema says about a key, and the lowered defaults
    cursor.py      what is under the cursor: a key, a value, a block, a layer range, a path
    features.py    hover, completion, definition, outline, formatting, quick fixes (plain functions)
    highlight.py   semantic tokens (keys, blocks, strings, numbers, comments) from the lexer
    explain.py     `kvsl explain` text as Markdown, and the file a diagnostic's code links to
    server.py      the pygls server: handlers, debounced diagnostics, crash guards

Everything but `server.py` is plain functions on text, testable without a client.
"""

# How long the server waits after an edit before checking (a newer edit restarts the wait).
DEFAULT_DEBOUNCE_MS = 15
MAX_DEBOUNCE_MS = 60_000  # a minute: longer is a mistake (and `ms / 1000` of a huge int overflows)
