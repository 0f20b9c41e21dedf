"""Data files that several wings share, read into records with coded diagnostics.

- `traces`     trace files (JSON lines): the teacher writes them, the build reads them
- `questions`  question files (GSM8K, ARC, CommonsenseQA, PIQA, plain JSON lines): the
               eval grades them, the teacher turns them into traces

They sit above `kvsl.lang` (their errors are `KvslError`s with spans) and below the
engine, the eval and the teacher, so those three share them without importing each other.
No torch is imported here.
"""
