"""Diagnostic codes KVS5xx: teacher and trace files (plain data; see kvsl.lang.codes)."""

from __future__ import annotations

from kvsl.lang.code_entry import Code
from kvsl.lang.diagnostics import Severity

TEACHER_CODES: tuple[Code, ...] = (
    Code(
        "KVS500",
        "trace file unreadable",
        Severity.ERROR,
        "The trace file a spec names does not exist, cannot be read, or is not UTF-8 text. "
        "Contrast pairs are built from it, so nothing can be extracted without it.",
        'contrast { traces = "traces/missing.jsonl" }',
        'contrast { traces = "traces/step_by_step.jsonl" }',
    ),
    Code(
        "KVS501",
        "invalid JSON in trace file",
        Severity.ERROR,
        "Each line of a trace file must be one JSON object. A line cut short by a killed "
        "writer, or hand edits, leave lines that are not JSON.",
        '{"question": "1+1?", "steps": ["1 plus 1 is 2."], "answer": "2"',
        '{"question": "1+1?", "steps": ["1 plus 1 is 2."], "answer": "2"}',
    ),
    Code(
        "KVS502",
        "trace record is missing a field",
        Severity.ERROR,
        "A trace needs a non-empty `question` string, a non-empty `steps` list of strings "
        'and an `answer` string: the positive demo is the steps then "The answer is X.", '
        "the negative demo is the answer alone.",
        '{"question": "1+1?", "answer": "2"}',
        '{"question": "1+1?", "steps": ["1 plus 1 is 2."], "answer": "2"}',
    ),
    Code(
        "KVS503",
        "duplicate trace id",
        Severity.ERROR,
        "Trace ids identify questions so that the teacher never asks twice and demos are "
        "never the question they precede; two lines with one id make that ambiguous.",
        '{"id": "q1", ...}\n{"id": "q1", ...}',
        '{"id": "q1", ...}\n{"id": "q2", ...}',
    ),
    Code(
        "KVS519",
        "trace record gives a field twice",
        Severity.ERROR,
        "kvsl reads the paper's released trace format unchanged: `query` is read as "
        "`question` and `solution` as `answer`. A record that carries both names with "
        "different values is ambiguous.",
        '{"question": "1+1?", "query": "2+2?", "steps": ["..."], "answer": "2"}',
        '{"query": "1+1?", "steps": ["1 plus 1 is 2."], "solution": "2"}',
    ),
    Code(
        "KVS520",
        "import target exists or cannot be written",
        Severity.ERROR,
        "`kvsl traces import` writes one new trace file. It does not overwrite an existing "
        "file (a trace file may hold paid-for teacher output) unless `--force` is given, "
        "and it reports a folder it cannot write to.",
        "kvsl traces import gsm8k_oai.jsonl --out specs/traces/step_by_step.jsonl",
        "kvsl traces import gsm8k_oai.jsonl --out specs/traces/gsm8k.jsonl",
    ),
    Code(
        "KVS521",
        "bad trace records left out",
        Severity.WARNING,
        "With `--skip-bad`, `kvsl traces import` leaves out records that are not valid "
        "traces (not JSON, or missing `query`, `steps` or `solution`) and reports the "
        "first; without it every bad record is an error with its line number.",
        "kvsl traces import piqa_oai.jsonl --out t.jsonl --skip-bad   # 1 record has no steps",
        "kvsl traces import piqa_oai.jsonl --out t.jsonl              # lists every bad line",
    ),
    Code(
        "KVS522",
        "repeated questions left out",
        Severity.WARNING,
        "A question may have one trace only: two traces of one question would let a target "
        "be preceded by its own worked answer. `kvsl traces import` keeps the first record "
        "of each question.",
        '{"query": "1+1?", ...}\n{"query": "1+1?", ...}',
        '{"query": "1+1?", ...}\n{"query": "2+2?", ...}',
    ),
    Code(
        "KVS523",
        "nothing to import",
        Severity.ERROR,
        "The source files hold no valid trace (empty files, or every record bad and "
        "`--skip-bad` given).",
        "kvsl traces import empty.jsonl --out t.jsonl",
        "kvsl traces import gsm8k_oai.jsonl --out t.jsonl",
    ),
    # KVS510 and up: `kvsl teach` (the teacher client and its run).
    Code(
        "KVS527",
        "torn last trace line cut off",
        Severity.WARNING,
        "`kvsl teach` appends each trace as one whole line with its newline, fsynced. A last "
        "line without its newline that is not a JSON object is what a kill, a full disk or a "
        "power cut left of an append: on resume it is cut off and its question is asked "
        "again (a dry run only says so). Any other bad line stops the run (KVS501/KVS502).",
        '{"id": "q1", "question": "...", "steps": ["..."], "answer": "4"}\n{"id": "q2", "quest',
        '{"id": "q1", "question": "...", "steps": ["..."], "answer": "4"}',
    ),
    Code(
        "KVS528",
        "another run is writing this trace file",
        Severity.ERROR,
        "One `kvsl teach` at a time fills a trace file: a second run on the same file would ask "
        "the teacher the same questions (paying twice) and append a second trace for each. The "
        "first run holds an advisory lock (in kvsl's user cache, never beside your files) "
        "until it ends, however it ends; the second stops at once, before any request. Rerun "
        "when the first is done: it resumes where the file stops.",
        "kvsl teach specs/x.kvs & kvsl teach specs/x.kvs",
        "kvsl teach specs/x.kvs --out a.jsonl & kvsl teach specs/x.kvs --out b.jsonl",
    ),
    Code(
        "KVS524",
        "teacher base URL is not an http(s) URL",
        Severity.ERROR,
        "`--base-url`, OPENAI_BASE_URL (or a spec's `base_url`, checked as KVS108) must be the "
        "http or https base URL of an OpenAI-compatible server. Anything else (another "
        "scheme, no host, a port out of range, an unclosed IPv6 bracket, a space) is refused "
        "before any request, with where the URL came from.",
        "kvsl teach specs/style.kvs --base-url 127.0.0.1:8000",
        "kvsl teach specs/style.kvs --base-url http://127.0.0.1:8000/v1",
    ),
    Code(
        "KVS510",
        "no API key for the teacher",
        Severity.ERROR,
        "`kvsl teach` sends the key in OPENAI_API_KEY to the chat-completions server. It is "
        "read only from the environment, never from a spec, so that specs can be shared and "
        "committed. Local servers (vLLM, ollama, llama.cpp) that check no key accept any "
        "value. `--dry-run` needs no key.",
        "$ unset OPENAI_API_KEY; kvsl teach specs/step_by_step.kvs",
        "$ export OPENAI_API_KEY=sk-...; kvsl teach specs/step_by_step.kvs",
    ),
    Code(
        "KVS511",
        "teacher server unreachable",
        Severity.ERROR,
        "No connection could be made to the base URL after the client's retries: the server "
        "is not running, the host or port is wrong, or a proxy is in the way. The run stops; "
        "traces already written stay and a rerun resumes after them.",
        "$ kvsl teach spec.kvs --base-url http://127.0.0.1:9/v1",
        "$ kvsl teach spec.kvs --base-url http://127.0.0.1:8000/v1   # vLLM's default port",
    ),
    Code(
        "KVS529",
        "the environment names a proxy that cannot be used",
        Severity.ERROR,
        "`kvsl teach` reaches the teacher through the proxy that HTTPS_PROXY, HTTP_PROXY or "
        "ALL_PROXY names (NO_PROXY's hosts directly), as curl and pip do. The URL there has "
        "a scheme the HTTP client cannot use, or is not a URL. Nothing was sent; fix or unset "
        "the variable.",
        "$ HTTPS_PROXY=ftp://proxy.corp:21 kvsl teach spec.kvs",
        "$ HTTPS_PROXY=http://proxy.corp:3128 kvsl teach spec.kvs",
    ),
    Code(
        "KVS534",
        "teacher server redirects without end",
        Severity.ERROR,
        "The base URL answers with a redirect the client cannot follow: one that leads "
        "back to itself (more than 20 hops), or a 3xx with no `Location`. Every request "
        "would go the same way, so the run stops before asking more; traces already "
        "written stay. Point the base URL at the address that answers chat completions.",
        "$ kvsl teach spec.kvs --base-url http://teacher.example.com/v1   # 301 → https, loops",
        "$ kvsl teach spec.kvs --base-url https://teacher.example.com/v1",
    ),
    Code(
        "KVS512",
        "teacher rejected the API key",
        Severity.ERROR,
        "The server answered 401 or 403: the key is wrong, revoked, or belongs to another "
        "server or project. The key itself is never printed.",
        "$ OPENAI_API_KEY=sk-typo kvsl teach spec.kvs",
        "$ OPENAI_API_KEY=sk-<your key> kvsl teach spec.kvs",
    ),
    Code(
        "KVS513",
        "teacher model or endpoint not found",
        Severity.ERROR,
        "The server answered 404: it serves no model by that name (ollama and vLLM name "
        "models by what was pulled or served), or the base URL lacks the `/v1` prefix so the "
        "chat-completions endpoint is not where the client looks.",
        'teacher { model = "gpt4o"  base_url = "http://127.0.0.1:11434" ... }',
        'teacher { model = "llama3.1:8b"  base_url = "http://127.0.0.1:11434/v1" ... }',
    ),
    Code(
        "KVS514",
        "teacher server keeps failing",
        Severity.ERROR,
        "Several requests in a row failed even after the client's own retries (rate limits, "
        "5xx errors, timeouts), or the server refused them (HTTP 400, for example a model "
        "that rejects an option such as `max_tokens`). Rather than log every remaining "
        "question as skipped, the run stops; traces already written stay and a rerun asks "
        "the failed questions again.",
        "$ kvsl teach spec.kvs --concurrency 64 --timeout 5",
        "$ kvsl teach spec.kvs --concurrency 4 --timeout 120",
    ),
    Code(
        "KVS515",
        "teacher template failed to render",
        Severity.ERROR,
        "The template compiled but raised an error when rendered for a real question, for "
        "example an undefined variable, or `choices[0]` on an open question whose choices "
        "are empty. Nothing is sent until every prompt renders.",
        'teacher { template = """{{ question }} First option: {{ choices[0].text }}""" }',
        'teacher { template = """{{ question }}{% if choices %} First option: '
        '{{ choices[0].text }}{% endif %}""" }',
    ),
    Code(
        "KVS516",
        "spec has no teacher block",
        Severity.ERROR,
        "`kvsl teach` needs to know the teacher model, the prompt template and the trace "
        "file to fill; they live in the spec's `teacher` block.",
        'style "s" { contrast { traces = "traces/s.jsonl" } }',
        'style "s" { teacher { model = "gpt-4o"  template = "s.j2"  traces = "traces/s.jsonl" } }',
    ),
    Code(
        "KVS517",
        "no question source for the teacher",
        Severity.ERROR,
        "The teacher writes one trace per question of a question file (GSM8K, ARC, "
        "CommonsenseQA, PIQA or plain `{question, answer}` JSONL). Name one with "
        "`--questions` or the spec's `questions =`.",
        "$ kvsl teach specs/step_by_step.kvs",
        "$ kvsl teach specs/step_by_step.kvs --questions data/gsm8k/train.jsonl --limit 40",
    ),
    Code(
        "KVS518",
        "built-in spec's trace file is read-only",
        Severity.ERROR,
        "A built-in style named by its name (`kvsl teach step-by-step`), or any spec inside "
        "an installed package (site-packages), is not yours to write: an upgrade would lose "
        "the traces, the vectors of every user of that environment would change, and with an "
        "editable install the traces would land in the kvsl checkout. Say where the traces "
        "go with `--traces FILE`, or copy the style's folder (the path `kvsl styles` prints) "
        "and teach your copy. `--dry-run` works on the built-in spec.",
        "$ kvsl teach step-by-step --questions gsm8k/train.jsonl",
        "$ kvsl teach step-by-step --questions gsm8k/train.jsonl --traces my_traces.jsonl",
    ),
    Code(
        "KVS525",
        "trace file cannot be written",
        Severity.ERROR,
        "`kvsl teach` appends every accepted trace to the trace file (the spec's teacher "
        "`traces`, or `--traces FILE`). It checks before the first request that the file can "
        "be written: not a folder in its place, a parent that is a folder (missing folders "
        "are created), write permission. A write that fails later (disk full, the file "
        "replaced by a folder) stops the run with exit 3; every trace written before it is "
        "kept, and a rerun resumes.",
        'teacher { traces = "traces" }   # a folder, not a file',
        'teacher { traces = "traces/step_by_step.jsonl" }',
    ),
    Code(
        "KVS526",
        "skip log cannot be written",
        Severity.ERROR,
        "Questions the teacher did not answer usably are logged in the skip log beside the "
        "trace file (`x.jsonl` → `x.skipped.jsonl`), so a rerun knows which to ask again. "
        "That file must be a readable, writable file too; it is checked with the trace file "
        "before the first request.",
        "$ mkdir traces/step_by_step.skipped.jsonl && kvsl teach specs/step_by_step.kvs",
        "$ rmdir traces/step_by_step.skipped.jsonl && kvsl teach specs/step_by_step.kvs",
    ),
)
