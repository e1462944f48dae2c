#!/usr/bin/env python3
"""Checks a tensor-parallel `tessera serve` (under `tessera launch -n N`)
against a one-process server of the same model with the official `openai`
Python SDK: the same greedy completions, requested several at once (so the
ranks run batched decode steps of several sequences, joining and leaving),
streamed and not.

Run by Tests/TesseraCLITests/DistributedServeTests.swift; by hand:

    tessera serve --port 8081 -m MODEL --model-name m &
    tessera launch -n 2 -- tessera serve --port 8082 -m MODEL --model-name m &
    python3 Tools/tp_serve_check.py --reference http://127.0.0.1:8081 \
        --split http://127.0.0.1:8082 --model m

Prints one JSON line last; exits non-zero at the first difference.
"""

import argparse
import concurrent.futures
import json
import sys

import openai

PROMPTS = [
    "the number 12 comes after",
    "once upon a time there was",
    "1, 2, 3, 4,",
    "the capital of France is",
    "hello",
    "a b c d e f g",
]


def complete(client, model, prompt, tokens, stream):
    if not stream:
        reply = client.completions.create(model=model, prompt=prompt, max_tokens=tokens, temperature=0)
        return reply.choices[0].text
    parts = []
    for chunk in client.completions.create(model=model, prompt=prompt, max_tokens=tokens, temperature=0, stream=True):
        if chunk.choices:
            parts.append(chunk.choices[0].text or "")
    return "".join(parts)


def run(url, model, prompts, tokens, stream):
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=300)
    with concurrent.futures.ThreadPoolExecutor(len(prompts)) as pool:
        return list(pool.map(lambda p: complete(client, model, p, tokens, stream), prompts))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", required=True, help="the one-process server's URL")
    parser.add_argument("--split", required=True, help="the tensor-parallel server's URL")
    parser.add_argument("--model", required=True)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--prompts", type=int, default=len(PROMPTS))
    args = parser.parse_args()
    prompts = PROMPTS[: args.prompts]
    checked = 0
    for stream in (False, True):
        want = run(args.reference, args.model, prompts, args.tokens, stream)
        got = run(args.split, args.model, prompts, args.tokens, stream)
        for prompt, a, b in zip(prompts, want, got):
            if a != b:
                print(f"stream={stream} prompt {prompt!r}: one process {a!r}, split {b!r}", file=sys.stderr)
                sys.exit(1)
            checked += 1
        if not any(want):
            print(f"stream={stream}: every completion was empty (nothing compared)", file=sys.stderr)
            sys.exit(1)
    print(json.dumps({"ok": True, "completions": checked}))


if __name__ == "__main__":
    main()
