"""The front end: source → syntax tree → diagnostics / plan.

Nothing in this package imports torch, transformers or openai, so that
`kvsl check` starts instantly and can guard spec files in CI.
"""
