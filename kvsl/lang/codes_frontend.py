"""Diagnostic codes KVS0xx-KVS2xx, owned by the front end (plain data; see kvsl.lang.codes).

KVS0xx: reading and parsing a file. KVS1xx: what a spec means (keys, types, ranges,
files, `extends`, the embedded model's layers). KVS2xx: teacher templates.
"""

from __future__ import annotations

from kvsl.lang.code_entry import Code
from kvsl.lang.diagnostics import Severity

E, W = Severity.ERROR, Severity.WARNING

_STYLE_OK = """style "step-by-step" {
  description = "Numbered steps, then the answer."
  contrast {
    traces = "traces/step_by_step.jsonl"
    pairs = 40
    shots = 2
  }
}"""

FRONTEND_CODES: tuple[Code, ...] = (
    # --- KVS0xx: reading and parsing ---------------------------------------------------
    Code(
        "KVS001",
        "cannot read file",
        E,
        "The file exists but could not be read (permissions, an I/O error). kvsl reads "
        "every spec whole before parsing it.",
        "chmod 000 specs/step_by_step.kvs && kvsl check specs/step_by_step.kvs",
        "chmod 644 specs/step_by_step.kvs && kvsl check specs/step_by_step.kvs",
    ),
    Code(
        "KVS002",
        "directory passed as a spec file",
        E,
        "A command that takes one spec file was given a directory. `kvsl check` and "
        "`kvsl fmt` accept directories (they look for `*.kvs` inside); `kvsl plan` and "
        "`kvsl build` need a file.",
        "kvsl plan specs/",
        "kvsl plan specs/step_by_step.kvs",
    ),
    Code(
        "KVS003",
        "file is not valid UTF-8",
        E,
        "Specs are UTF-8 text. The diagnostic points at the first byte that is not part "
        "of a valid UTF-8 sequence (often a file saved as Latin-1).",
        'description = "caf\\xe9"   (the byte 0xe9 alone, saved as Latin-1)',
        'description = "café"      (saved as UTF-8)',
    ),
    Code(
        "KVS004",
        "binary file",
        E,
        "The file contains a NUL byte, so it is not text: usually a model, an archive or "
        "an artifact passed by mistake.",
        "kvsl check vectors/step_by_step.safetensors",
        "kvsl check specs/step_by_step.kvs",
    ),
    Code(
        "KVS005",
        "file is too large",
        E,
        "A spec is a page of settings; files over 1 MB are refused before parsing, since "
        "they are almost certainly the wrong file (a trace file or a dataset).",
        "kvsl check data/gsm8k.jsonl",
        "kvsl check specs/step_by_step.kvs",
    ),
    Code(
        "KVS006",
        "empty spec",
        E,
        "The file holds no items at all (it is empty or only has comments). Every spec "
        "declares one `style` block.",
        "# TODO",
        _STYLE_OK,
    ),
    Code(
        "KVS007",
        "nesting is too deep",
        E,
        "Braces and brackets nest more than 32 levels deep. Specs nest three levels "
        "(style > steer > at); deeper nesting is refused before parsing so that no input "
        "can exhaust the parser's stack.",
        'style "s" { steer { at [[[[[[1]]]]]] { value = 2 } } }   (and deeper)',
        'style "s" { steer { at [1..4] { value = 2 } } }',
    ),
    Code(
        "KVS008",
        "no such file",
        E,
        "A path on the command line does not exist. This is a usage error: the command "
        "exits with status 2.",
        "kvsl check specs/step-by-step.kvs",
        "kvsl check specs/step_by_step.kvs",
    ),
    Code(
        "KVS009",
        "no spec files in directory",
        W,
        "A directory given to `kvsl check` or `kvsl fmt` contains no `*.kvs` file "
        "(searched recursively; hidden folders, virtual environments, `node_modules` and "
        "linked folders skipped), so nothing was checked.",
        "kvsl check templates/",
        "kvsl check specs/",
    ),
    Code(
        "KVS010",
        "unexpected token",
        E,
        "The parser found a token where the grammar does not allow it. The message lists "
        "what it expected when there are only a few possibilities.",
        'style "s" {\n  contrast { pairs = 4 } }\n}',
        'style "s" {\n  contrast { pairs = 4 }\n}',
    ),
    Code(
        "KVS011",
        "unexpected character",
        E,
        "A character that starts no token of the language, such as `:` or `;`. Keys take "
        "their value with `=`, and items need no separator.",
        'style "s" { contrast { pairs: 4 } }',
        'style "s" { contrast { pairs = 4 } }',
    ),
    Code(
        "KVS012",
        "unterminated string",
        E,
        'A `"` string must close on the same line. Text that spans lines (an inline '
        'template) goes in a triple-quoted `"""..."""` block.',
        'style "s" { description = "numbered steps }',
        'style "s" { description = "numbered steps" }',
    ),
    Code(
        "KVS013",
        "unexpected end of file",
        E,
        "The file ended inside a block or a list: a `}` or `]` is missing. A label points "
        "at the `{` or `[` that is never closed.",
        'style "s" {\n  steer { value = 6 }\n',
        'style "s" {\n  steer { value = 6 }\n}\n',
    ),
    Code(
        "KVS014",
        "missing `=`",
        E,
        "A key is followed by a value without `=` between them.",
        'style "s" { contrast { pairs 40 } }',
        'style "s" { contrast { pairs = 40 } }',
    ),
    Code(
        "KVS015",
        "invalid escape in string",
        E,
        'Inside `"..."` a backslash starts an escape: \\n \\t \\r \\0 \\\\ \\" \\/ \\uXXXX '
        "\\UXXXXXXXX. Any other escape is an error, so that a regular expression like "
        '`"\\d"` is written `"\\\\d"` on purpose rather than by accident.',
        'style "s" { markers = ["^\\d+\\."] }',
        'style "s" { markers = ["^\\\\d+\\\\."] }',
    ),
    Code(
        "KVS016",
        "missing `,` in list",
        E,
        "Two list items follow each other without a comma.",
        'style "s" { steer { layers = [1 2] } }',
        'style "s" { steer { layers = [1, 2] } }',
    ),
    Code(
        "KVS017",
        "missing value",
        E,
        "A key and `=` are not followed by a value (a string, a number, a name or a list).",
        'style "s" { contrast { pairs = } }',
        'style "s" { contrast { pairs = 40 } }',
    ),
    Code(
        "KVS018",
        "unknown diagnostic code",
        E,
        "`kvsl explain` was given a code that is not registered. Codes are `KVS` and three "
        "digits; `kvsl explain --list` lists them. This is a usage error (exit status 2).",
        "kvsl explain KVS999",
        "kvsl explain KVS104",
    ),
    Code(
        "KVS019",
        "cannot write the output",
        E,
        "A report, a plan or a reformatted spec could not be written: the disk is full, "
        "or the output is a file that refuses writes (`/dev/full`). This is an "
        "environment failure (exit status 3), not an error in the spec; a file being "
        "reformatted is left as it was. (A closed pipe, as in `kvsl check | head -1`, "
        "ends quietly with exit status 3.)",
        "kvsl plan specs/step_by_step.kvs > /dev/full",
        "kvsl plan specs/step_by_step.kvs > plan.json",
    ),
    Code(
        "KVS020",
        "integer out of range",
        E,
        "Integers in a spec are 64-bit signed: at most 9,223,372,036,854,775,807 in size. "
        "The literal is refused where it is written, before any conversion (Python would "
        "otherwise convert a number of any length, slowly, and fail past 4,300 digits). "
        "Write a large decimal as a float, such as `1e30`.",
        "generate { seed = 99999999999999999999 }",
        "generate { seed = 9999 }",
    ),
    Code(
        "KVS021",
        "meaning checks skipped after syntax errors",
        Severity.NOTE,
        "A file with syntax errors is checked again with the broken lines left out, so "
        "that unknown keys and bad values elsewhere are reported in the same run. When "
        "the file still does not parse without them (usually a lost `{` or `}`, which "
        "changes the block every later line belongs to), meaning checks wait until the "
        "syntax errors are fixed, and this note says so.",
        'style "s" {\n  contrast {\n    pairs = 4\n  generate { mode = fast }\n',
        'style "s" {\n  contrast {\n    pairs = 4\n  }\n  generate { mode = greedy }\n}\n',
    ),
    Code(
        "KVS022",
        "nothing on standard input",
        E,
        "`kvsl check -`, `kvsl fmt -` and `kvsl plan -` read one spec from standard input, and it was "
        "empty: usually the command before the `|` failed (`git show` prints nothing for "
        "a path it does not know). This is a usage error (exit status 2), like a missing "
        "file. A spec read from standard input is named `<stdin>` in diagnostics, and its "
        "relative paths (`template`, `traces`, `extends`) start in the current folder.",
        "git show :specs/step-by-step.kvs | kvsl check -",
        "git show :specs/step_by_step.kvs | kvsl check -",
    ),
    Code(
        "KVS023",
        "folder too large to walk",
        E,
        "`kvsl check` and `kvsl fmt` look for `*.kvs` files in a folder they are given, "
        "skipping hidden folders, virtual environments, `node_modules` "
        "and linked folders (`kvsl fmt` also leaves out linked files outside it). They do "
        "not walk the file system's root at all, and past 20,000 folders (a home folder "
        "full of checkouts) they stop; either way they use none of that folder's files, so "
        "a slip such as `kvsl fmt /` or `kvsl fmt ~` neither walks a whole disk nor "
        "reformats every checkout on it. This is a usage error (exit status 2): "
        "name the folder that holds the specs, or the files themselves.",
        "kvsl fmt /",
        "kvsl fmt specs/",
    ),
    Code(
        "KVS024",
        "empty stop string",
        E,
        "A stop string ends a generation where it appears in the text, and the empty "
        "string appears in every text: each generation would end after its first token, "
        "with no error anywhere. `kvsl serve` refuses an empty `stop` in a request for the "
        "same reason.",
        'style "s" {\n  generate { stop = ["", "Question:"] }\n}',
        'style "s" {\n  generate { stop = ["Question:"] }\n}',
    ),
    # --- KVS1xx: meaning ---------------------------------------------------------------
    Code(
        "KVS100",
        "top-level item is not a style",
        E,
        "At the top level a spec holds only its `style` block (or a `base` block); every "
        "setting goes inside it.",
        'model = "smollm2-135m"\nstyle "s" { ... }',
        'style "s" {\n  model = "smollm2-135m"\n  ...\n}',
    ),
    Code(
        "KVS101",
        "more than one style in one file",
        E,
        "One spec declares one style, so that a file name identifies a style and its "
        "vectors. Put each style in its own file; share settings with `extends`.",
        'style "a" { ... }\nstyle "b" { ... }',
        'style "a" { ... }        (and style "b" in b.kvs)',
    ),
    Code(
        "KVS102",
        "style without a name",
        E,
        "A `style` (or `base`) block needs its name as a quoted string: the name labels "
        "artifacts, runs and evaluation rows.",
        "style {\n  ...\n}",
        'style "step-by-step" {\n  ...\n}',
    ),
    Code(
        "KVS103",
        "invalid style name",
        E,
        "Style names are used in file names and tables: letters, digits, `-`, `_` and "
        "`.`, starting with a letter or a digit, at most 64 characters.",
        'style "step by step!" { ... }',
        'style "step-by-step" { ... }',
    ),
    Code(
        "KVS104",
        "unknown key",
        E,
        "The key (or block) does not exist where it is written. The help suggests the "
        "closest known key, or lists the keys this block accepts.",
        'style "s" {\n  contrast { pairz = 40 }\n}',
        'style "s" {\n  contrast { pairs = 40 }\n}',
    ),
    Code(
        "KVS105",
        "duplicate key",
        E,
        "A key (or block) is set twice in the same place. kvsl does not let the last one "
        "win silently; a label points at the first.",
        "contrast {\n  pairs = 40\n  pairs = 20\n}",
        "contrast {\n  pairs = 40\n}",
    ),
    Code(
        "KVS106",
        "missing key",
        E,
        "A required key or block is absent (after merging `extends`). A style needs a "
        "`description`, and a `contrast` block with `pairs`, `shots` and a trace file "
        "(`contrast.traces` or `teacher.traces`); a `teacher` needs `model` and "
        "`template`.",
        'style "s" {\n  description = "..."\n  contrast { shots = 2  traces = "t.jsonl" }\n}',
        'style "s" {\n  description = "..."\n  contrast { pairs = 40  shots = 2  traces = "t.jsonl" }\n}',
    ),
    Code(
        "KVS107",
        "wrong type",
        E,
        "The value has the wrong type for its key: a string where a number is expected, a "
        "block where a value is expected, a float where an integer is expected, ...",
        'contrast { pairs = "40" }',
        "contrast { pairs = 40 }",
    ),
    Code(
        "KVS108",
        "invalid value",
        E,
        "The value is not one of those the key accepts (e.g. `select` is `random` or "
        "`nearest`), or is not of the right form (a `base_url` must be an http(s) URL).",
        "contrast { select = randm }",
        "contrast { select = random }",
    ),
    Code(
        "KVS109",
        "value out of range",
        E,
        "A number is outside its allowed range: pairs >= 1, shots >= 0, seeds >= 0, "
        "max_new_tokens >= 1, temperature >= 0, 0 < top_p <= 1, batch_size >= 1, ...",
        "generate { top_p = 1.5 }",
        "generate { top_p = 0.9 }",
    ),
    Code(
        "KVS110",
        "`shots` not less than `pairs`",
        E,
        "Each prompt shows k demos taken from the other traces, so k must be at most "
        "N - 1 (0 <= shots <= pairs - 1).",
        "contrast { pairs = 2  shots = 2 }",
        "contrast { pairs = 40  shots = 2 }",
    ),
    Code(
        "KVS111",
        "number is not finite",
        E,
        "A number overflows a 64-bit float (e.g. `1e999`) and would become infinity; a "
        "coefficient must be a finite number.",
        "steer { value = 1e999 }",
        "steer { value = 6 }",
    ),
    Code(
        "KVS112",
        "empty layer selection",
        E,
        "A layer list selects no layer: `[]`, or a range that counts down like `[5..2]` "
        "(ranges are inclusive and count up). For a known model, ranges are also resolved "
        "against its number of layers.",
        "steer { layers = [5..2] }",
        "steer { layers = [2..5] }",
    ),
    Code(
        "KVS113",
        "layer outside the model",
        E,
        "A layer index is beyond the model's layers. Checked for models whose size kvsl "
        "knows without loading them (the embedded SmolLM2-135M has 30 layers: 0..29, or "
        "-30..-1 counted from the end). Other models are checked by `kvsl build`.",
        'model = "smollm2-135m"\nsteer { layers = [1..40] }',
        'model = "smollm2-135m"\nsteer { layers = [1..] }',
    ),
    Code(
        "KVS114",
        "question file does not exist",
        E,
        "`teacher.questions` names a file (relative to the spec) that does not exist, so "
        "`kvsl teach` would have nothing to ask.",
        'teacher { questions = "questions.jsonl" }   (no such file)',
        'teacher { questions = "../data/questions.jsonl" }',
    ),
    Code(
        "KVS115",
        "trace file does not exist",
        E,
        "The trace file (relative to the spec) does not exist and the spec has no "
        "`teacher` block that could create it, so no contrast pairs can be built.",
        'contrast { traces = "traces/missing.jsonl"  pairs = 40  shots = 2 }',
        'contrast { traces = "traces/step_by_step.jsonl"  pairs = 40  shots = 2 }',
    ),
    Code(
        "KVS116",
        "trace file does not exist yet",
        W,
        "The trace file does not exist, but the spec has a `teacher` block: `kvsl teach "
        "SPEC` will create it. `kvsl build` needs it.",
        'teacher { ... traces = "traces/new_style.jsonl" }   (file not written yet)',
        "kvsl teach specs/new_style.kvs   (then the file exists)",
    ),
    Code(
        "KVS117",
        "extended spec not found",
        E,
        "`extends` names a spec (relative to this one) that does not exist or is a directory.",
        'extends = "bsae.kvs"',
        'extends = "base.kvs"',
    ),
    Code(
        "KVS118",
        "`extends` cycle",
        E,
        "Specs extend each other in a loop, so no spec in it has defaults to start from. "
        "Labels show every `extends` in the cycle.",
        'a.kvs: extends = "b.kvs"\nb.kvs: extends = "a.kvs"',
        'a.kvs: extends = "base.kvs"\nb.kvs: extends = "base.kvs"',
    ),
    Code(
        "KVS119",
        "duplicate style name",
        E,
        "Two files checked together declare the same style name. Names select vector "
        "artifacts and label evaluation rows, so they must be unique.",
        'a.kvs: style "steps" { ... }\nb.kvs: style "steps" { ... }',
        'a.kvs: style "steps" { ... }\nb.kvs: style "steps-long" { ... }',
    ),
    Code(
        "KVS120",
        "model path does not exist",
        E,
        "`model` is a local path (a `.gguf` file, or a path starting with `./`, `../`, "
        "`/` or `~`), relative to the spec, and it does not exist.",
        'model = "../models/tiny.gguf"   (no such file)',
        'model = "smollm2-135m"',
    ),
    Code(
        "KVS121",
        "model name looks like a misspelt embedded model",
        W,
        "The name is not an embedded model, so it will be treated as a Hugging Face hub "
        "id, but it is very close to an embedded model's name.",
        'model = "smollm2-135"',
        'model = "smollm2-135m"',
    ),
    Code(
        "KVS122",
        "base spec has no plan",
        E,
        "A `base` block declares defaults for specs that `extends` it; it is not a style "
        "and cannot be planned or built itself.",
        "kvsl plan specs/_base.kvs",
        "kvsl plan specs/step_by_step.kvs   (which extends it)",
    ),
    Code(
        "KVS123",
        "non-zero key coefficient",
        W,
        "Keys are cached after rotary position embedding, so a key steering vector mixes "
        "positions; the reference method steers values only (`key = 0`).",
        "steer { key = 1.5  value = 6 }",
        "steer { key = 0  value = 6 }",
    ),
    Code(
        "KVS124",
        "steering layer 0",
        W,
        "At layer 0 the cached value of the last token depends only on that token, which "
        "is the same offset token in the positive and the negative prompt: the value "
        "vector there is exactly zero. The reference steers layers 1 and up.",
        "steer { layers = all }",
        "steer { layers = [1..] }",
    ),
    Code(
        "KVS125",
        "sampling setting with greedy decoding",
        W,
        "`temperature` or `top_p` is set in `generate` but `mode` is `greedy` (the "
        "default), so the setting is ignored.",
        "generate { temperature = 0.7 }",
        "generate { mode = sample  temperature = 0.7 }",
    ),
    Code(
        "KVS126",
        "invalid regular expression",
        E,
        'A `markers` entry is not a valid Python regular expression. In a `"..."` '
        "string a backslash is written `\\\\`.",
        'markers = ["(?i)the answer is ("]',
        'markers = ["(?i)the answer is"]',
    ),
    Code(
        "KVS127",
        "more shots than traces",
        E,
        "With a query pool (`questions`) the targets come from the pool and every one of "
        "the k demos is a trace, so `shots` can be at most the number of traces in the "
        "trace file (not N - 1, as without a pool).",
        'contrast { questions = "questions/gsm8k_train.jsonl"  pairs = 200  shots = 60 }'
        "    # 44 traces",
        'contrast { questions = "questions/gsm8k_train.jsonl"  pairs = 200  shots = 10 }',
    ),
    Code(
        "KVS128",
        "more pairs than pool questions",
        E,
        "With a query pool each of the N pairs has its own target question from the pool, "
        "so `pairs` can be at most the number of questions in the pool file.",
        'contrast { questions = "questions/gsm8k_train.jsonl"  pairs = 1000  shots = 10 }',
        'contrast { questions = "questions/gsm8k_train.jsonl"  pairs = 400  shots = 10 }',
    ),
    Code(
        "KVS129",
        "question format without a query pool",
        W,
        "`contrast.format` says how the query pool (`contrast.questions`) is read; without "
        "a pool it has no effect.",
        "contrast { format = gsm8k  pairs = 40  shots = 2 }",
        'contrast { questions = "questions/gsm8k_train.jsonl"  format = plain  pairs = 200  shots = 10 }',
    ),
    Code(
        "KVS135",
        "`min_new_tokens` exceeds `max_new_tokens`",
        E,
        "`min_new_tokens` suppresses the end of text until that many tokens are generated, "
        "but generation stops at `max_new_tokens` (256 unless set): the two cannot both hold.",
        "generate { max_new_tokens = 64  min_new_tokens = 100 }",
        "generate { max_new_tokens = 128  min_new_tokens = 100 }",
    ),
    Code(
        "KVS136",
        "repetition penalty below 1",
        W,
        "transformers' `repetition_penalty` divides the scores of tokens already in the "
        "prompt or the output by the penalty: above 1 discourages repeating them, below 1 "
        "makes repetition (loops) more likely, 1 turns it off.",
        "generate { repetition_penalty = 0.8 }",
        "generate { repetition_penalty = 1.15 }",
    ),
    Code(
        "KVS137",
        "`no_repeat_ngram_size` of 1 or 2",
        W,
        "`no_repeat_ngram_size = n` forbids any n tokens that already occurred together. "
        "With n = 1 no token may come twice, with n = 2 no pair: ordinary text and "
        "arithmetic repeat short n-grams (`the`, `= 4`), so the output degrades. 3 or more "
        "stops loops without that; 0 turns it off.",
        "generate { no_repeat_ngram_size = 2 }",
        "generate { no_repeat_ngram_size = 4 }",
    ),
    Code(
        "KVS140",
        "NUL character in a file name",
        E,
        "A key that names a file (`extends`, `model`, `template`, `traces`, `questions`) "
        'holds a NUL character (written `\\0` in a `"..."` string). No file name can hold '
        "one, so the value is refused before any file is looked up.",
        'teacher { traces = "traces/a\\0.jsonl" }',
        'teacher { traces = "traces/a.jsonl" }',
    ),
    Code(
        "KVS141",
        "marker matches the empty text",
        E,
        "A `markers` regular expression matches the empty text (`a*`, `x?`, `^`), so it "
        "would match every generation and the style's adherence score would mean "
        "nothing. The scorer ignores such a marker; the checker reports it.",
        'markers = ["\\\\d*"]',
        'markers = ["^\\\\s*\\\\d+\\\\."]',
    ),
    Code(
        "KVS142",
        "marker is too complex",
        E,
        "A `markers` regular expression is beyond the limits every marker is held to: at "
        "most 500 characters, repeat counts (`{m,n}`) up to 1,000, groups nested up to 20 "
        "deep. Python's `re` fails on larger ones with errors other than a syntax error "
        "(a count of 2**32 overflows, 2,000 nested groups exhaust the recursion limit).",
        'markers = ["a{4294967296}"]',
        'markers = ["a{3}"]',
    ),
    Code(
        "KVS143",
        "`extends` chain too long",
        E,
        "A chain of `extends` may be at most 16 specs long: a base of a base of a base is "
        "already rare, and a longer chain is a mistake (following it would only spend the "
        "stack).",
        "a.kvs extends b.kvs, which extends c.kvs, ... 17 specs in all",
        "a.kvs extends base.kvs, which holds the shared settings",
    ),
    # --- KVS2xx: templates -------------------------------------------------------------
    Code(
        "KVS200",
        "template file cannot be read",
        E,
        "`teacher.template` is a file path (relative to the spec) that does not exist, is "
        'not UTF-8, or is not a file. A `"..."` string is always a path; an inline '
        'template is a `"""..."""` block.',
        'teacher { template = "../templates/missing.j2" }',
        'teacher { template = "../templates/step_by_step.j2" }',
    ),
    Code(
        "KVS201",
        "template syntax error",
        E,
        "Jinja2 cannot parse the template. The diagnostic points at the template's own "
        "line (in the template file, or inside the spec for an inline block), with a "
        "label at the spec's `template =`.",
        "Solve {{ question }\n",
        "Solve {{ question }}\n",
    ),
    Code(
        "KVS202",
        "template variable not provided",
        E,
        "The template uses a variable the teacher does not pass. Templates receive "
        "exactly: question, answer, choices (a list of {label, text}), style, "
        "description, domain (may be None); undefined variables are errors at render "
        "time, so they are caught here.",
        "Solve {{ problem }}\n",
        "Solve {{ question }}\n",
    ),
    Code(
        "KVS203",
        "template never uses `question`",
        W,
        "The teacher sends the template once per question; a template without "
        "`{{ question }}` asks the same thing every time.",
        "Explain your reasoning step by step.\n",
        "Explain your reasoning step by step.\n\nQuestion: {{ question }}\n",
    ),
    Code(
        "KVS204",
        "template is too complex",
        E,
        "The template is beyond the limits every template is held to before it is "
        "compiled: at most 5,000 syntax nodes, 40 levels of nesting (expressions and "
        "blocks), `{% for %}` loops nested 2 deep, 256 KB for a template file. Jinja2 "
        "compiles a template by recursion, so deeper ones fail; the limits are far "
        "beyond any prompt.",
        "{{ question" + "|trim" * 45 + " }}",
        "{{ question }}",
    ),
    Code(
        "KVS205",
        "template fails when rendered",
        E,
        "The template compiles, but rendering it with sample values (a question with "
        "choices A and B, an answer, the style's name and description, a domain) fails: "
        "a value over the render budget (100,000 characters or items, a `range` over "
        "10,000, loops running over 100,000 times in all, over 5,000,000 characters of "
        "values made in one render, output over 200,000 "
        "characters), a division by zero, a filter on the "
        "wrong type. `kvsl teach` renders the same way, so it would fail too.",
        "{{ question }} {{ 'a' * 10**10 }}",
        "{{ question }} {{ 'a' * 10 }}",
    ),
    Code(
        "KVS206",
        "template feature refused",
        E,
        "A kvsl template is one self-contained text, rendered in a sandbox with no "
        "template loader: `{% include %}`, `{% import %}`, `{% from ... import %}` and "
        "`{% extends %}` have nothing to load, and `{% macro %}` / `{% call %}` are "
        "refused because a macro can call itself without bound.",
        "{% include 'header.j2' %}\n{{ question }}",
        "Answer step by step.\n{{ question }}",
    ),
)
