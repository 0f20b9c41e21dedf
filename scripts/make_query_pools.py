"""Write the query pools shipped in `specs/questions/` from benchmark TRAIN splits.

    python scripts/make_query_pools.py /work/shared/data/benchmarks

A query pool holds the target questions of contrast pairs (`contrast { questions = ... }`);
only the question text is shown to the model, the answer is kept for reference. Each pool
is the LAST 400 records of a train split, in file order (so a dev set taken from the head
of the same split, as `kvsl tune` users tend to take it, never overlaps), written in the
`plain` format (`{"id", "question", "answer"}`, plus `choices` for multiple choice):

- gsm8k_train.jsonl: GSM8K train (openai/grade-school-math, MIT, (c) 2021 OpenAI); the
  answer is the number after `####`;
- csqa_train.jsonl: CommonsenseQA train_rand_split (MIT, per the dataset card of
  tau/commonsense_qa); the question is the stem, the choices its five options.

Test splits are never used. See specs/questions/README.md for sources and licences.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "specs" / "questions"
SIZE = 400


def _tail(path: Path) -> list[tuple[int, dict]]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    start = len(lines) - SIZE
    return [(start + i + 1, json.loads(line)) for i, line in enumerate(lines[start:])]


def gsm8k(source: Path) -> list[dict]:
    records = []
    for line_no, record in _tail(source / "gsm8k" / "train.jsonl"):
        answer = record["answer"].rsplit("####", 1)[1].strip().replace(",", "")
        records.append({"id": f"gsm8k-train-{line_no}", "question": record["question"], "answer": answer})
    return records


def csqa(source: Path) -> list[dict]:
    records = []
    for _line_no, record in _tail(source / "csqa" / "train_rand_split.jsonl"):
        question = record["question"]
        records.append(
            {
                "id": f"csqa-train-{record['id']}",
                "question": question["stem"],
                "choices": [{"label": c["label"], "text": c["text"]} for c in question["choices"]],
                "answer": record["answerKey"],
            }
        )
    return records


def main(argv: list[str]) -> int:
    source = Path(argv[0] if argv else "/work/shared/data/benchmarks")
    OUT.mkdir(parents=True, exist_ok=True)
    for name, records in (("gsm8k_train.jsonl", gsm8k(source)), ("csqa_train.jsonl", csqa(source))):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        (OUT / name).write_text(text, encoding="utf-8")
        print(f"{name}: {len(records)} questions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
