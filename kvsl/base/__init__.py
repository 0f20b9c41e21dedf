"""The floor: small pieces every other part of kvsl may use, and that import none of it.

- `atomic`     atomic file writes (`atomic_path`): a file is complete or absent
- `jsonl`      appending JSON lines that survive a kill (`append_jsonl`), under a lock
  that a rewrite of the whole file takes too (`locked_file`)
- `plurals`    a count and its noun in messages: `counted(1, "question")`
- `hashing`    `file_sha256`
- `locations`  where kvsl keeps files: the user cache (`KVSL_CACHE_DIR`), the package data
- `progress`   the one rich progress display
- `answers`    reading a final answer out of a model's text, and grading it; its readers:
  `numbers` (numeric answers), `choices` (multiple-choice labels), and `extracted`
  (what they return: the answer and how it was read)

Rule (tests/test_layers.py): modules here import the standard library and rich only,
never another part of kvsl, never torch, transformers or openai.
"""
