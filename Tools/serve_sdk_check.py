#!/usr/bin/env python3
"""Checks a running `tessera serve` with the official `openai` and `anthropic`
Python SDKs (and raw HTTP for malformed requests).

Run by Tests/TesseraCLITests/ServeBinaryTests.swift, which starts the server
(with --api-key and --cors-origin) and a second one with --max-queue 0; usable
by hand too:

    tessera serve --port 8080 --api-key k --cors-origin http://example.com &
    python3 Tools/serve_sdk_check.py --url http://127.0.0.1:8080 --api-key k \
        --model SmolLM2-135M-Instruct.Q4_1 --tessera .build/debug/tessera --model-path PATH --pid PID

Prints one JSON line of measurements last; exits non-zero at the first failed check.
"""

import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import anthropic
import jsonschema
import openai

PROMPT = "Write a haiku about the sea."
SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../Tests/Fixtures/structured/schemas.json")
# Newer anthropic SDKs dropped the temperature argument; the API field still exists.
GREEDY = {"temperature": 0}
N = 12  # tokens per greedy check: enough text to compare, cheap in a debug build


T0 = time.time()


def step(name):
    print(f"[{time.time() - T0:6.1f} s] {name}", file=sys.stderr, flush=True)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def http(url, path, body=None, headers=None, method=None, raw=None):
    """(status, headers, parsed JSON or text) of one request; errors are answers too."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url + path, data=data, method=method or ("POST" if data is not None else "GET"))
    request.add_header("content-type", "application/json")
    for k, v in (headers or {}).items():
        request.add_header(k, v)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, hdrs, text = response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as e:
        status, hdrs, text = e.code, dict(e.headers), e.read().decode()
    try:
        return status, hdrs, json.loads(text)
    except ValueError:
        return status, hdrs, text


def metric(url, key, name):
    _, _, text = http(url, "/metrics", headers={"authorization": "Bearer " + key})
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"/metrics has no {name}")


def peak_rss_mib(pid):
    """The server's peak resident memory (VmHWM), MiB."""
    with open(f"/proc/{pid}/status") as f:
        return round(next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024, 1)


def openai_error_shape(body, status, where):
    check(isinstance(body, dict) and isinstance(body.get("error"), dict), f"{where}: not OpenAI's error shape: {body}")
    e = body["error"]
    check(all(k in e for k in ("message", "type", "param", "code")), f"{where}: error lacks fields: {e}")
    check(isinstance(e["message"], str) and e["message"], f"{where}: empty message")


def anthropic_error_shape(body, where):
    check(isinstance(body, dict) and body.get("type") == "error", f"{where}: not Anthropic's error shape: {body}")
    check(isinstance(body.get("error"), dict) and body["error"].get("type") and body["error"].get("message"),
          f"{where}: error lacks type/message: {body}")


WEATHER = {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
           "required": ["city"], "additionalProperties": False}


def tool_checks(oa, an, model):
    """Tool calls through both SDKs (a model whose template renders tools): a forced tool_choice makes
    the call certain; it is well-formed, its arguments validate, streaming gives the same call, and the
    tool's result sent back renders and answers."""
    step("tools (openai)")
    tool = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.",
                                             "parameters": WEATHER}}
    other = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
    ask = [{"role": "user", "content": "What is the weather in Oslo?"}]
    r = oa.chat.completions.create(model=model, messages=ask, tools=[other, tool], max_tokens=120, temperature=0,
                                   tool_choice={"type": "function", "function": {"name": "get_weather"}})
    c = r.choices[0]
    check(c.finish_reason == "tool_calls" and c.message.tool_calls, f"no tool call: {c}")
    call = c.message.tool_calls[0]
    check(call.type == "function" and call.id and call.function.name == "get_weather", f"call {call}")
    jsonschema.validate(json.loads(call.function.arguments), WEATHER)
    step(f"  call: {call.function.name}({call.function.arguments})")
    calls, finish = {}, None
    for chunk in oa.chat.completions.create(model=model, messages=ask, tools=[other, tool], max_tokens=120, temperature=0,
                                            tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                            stream=True):
        for d in chunk.choices:
            for tc in d.delta.tool_calls or []:
                entry = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                entry["name"] += tc.function.name or ""
                entry["arguments"] += tc.function.arguments or ""
            finish = d.finish_reason or finish
    check(finish == "tool_calls" and list(calls.values()) == [{"name": call.function.name,
                                                               "arguments": call.function.arguments}],
          f"streamed calls {calls} ({finish}) != {call}")
    required = oa.chat.completions.create(model=model, messages=ask, tools=[other, tool], max_tokens=120,
                                          temperature=0.8, seed=3, tool_choice="required")
    rc = required.choices[0].message.tool_calls
    check(required.choices[0].finish_reason == "tool_calls" and rc and rc[0].function.name in ("get_weather", "get_time"),
          f"required: {required.choices[0]}")
    if rc[0].function.name == "get_weather":
        jsonschema.validate(json.loads(rc[0].function.arguments), WEATHER)
    # The round trip: the call and its result go back; the template renders them (a longer prompt).
    follow = ask + [{"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                    {"role": "tool", "tool_call_id": call.id, "content": "12 degrees and sunny"}]
    back = oa.chat.completions.create(model=model, messages=follow, tools=[tool], max_tokens=N, temperature=0)
    check(back.choices[0].finish_reason in ("stop", "length", "tool_calls"), f"round trip {back.choices[0]}")
    check(back.usage.prompt_tokens > r.usage.prompt_tokens + 10, f"round trip prompt {back.usage} vs {r.usage}")
    # tool_choice none: the tools are not rendered, no calls.
    none = oa.chat.completions.create(model=model, messages=ask, tools=[tool], tool_choice="none", max_tokens=4,
                                      temperature=0)
    check(not none.choices[0].message.tool_calls and none.usage.prompt_tokens < r.usage.prompt_tokens,
          f"tool_choice none: {none}")

    step("tools (anthropic)")
    an_tool = {"name": "get_weather", "description": "The weather in a city.", "input_schema": WEATHER}
    m = an.messages.create(model=model, max_tokens=120, messages=ask, tools=[an_tool], tool_choice={"type": "any"},
                           extra_body=GREEDY)
    uses = [b for b in m.content if b.type == "tool_use"]
    check(m.stop_reason == "tool_use" and len(uses) >= 1, f"anthropic: no tool_use: {m}")
    check(uses[0].name == "get_weather" and uses[0].id, f"tool_use {uses[0]}")
    step(f"  tool_use: {uses[0].name}({json.dumps(uses[0].input)})")
    jsonschema.validate(uses[0].input, WEATHER)
    events = []
    with an.messages.stream(model=model, max_tokens=120, messages=ask, tools=[an_tool], tool_choice={"type": "any"},
                            extra_body=GREEDY) as stream:
        for event in stream:
            events.append((event.type, getattr(getattr(event, "delta", None), "type", None)))
        final = stream.get_final_message()
    check(("content_block_delta", "input_json_delta") in events, f"no input_json_delta in {sorted(set(events))}")
    suses = [b for b in final.content if b.type == "tool_use"]
    check(final.stop_reason == "tool_use" and [(b.name, b.input) for b in suses] == [(b.name, b.input) for b in uses],
          f"streamed tool_use {final.content} != {m.content}")
    content = [{"type": "text", "text": b.text} for b in m.content if b.type == "text" and b.text]
    content += [{"type": "tool_use", "id": b.id, "name": b.name, "input": b.input} for b in uses]
    results = [{"type": "tool_result", "tool_use_id": b.id, "content": "12 degrees and sunny"} for b in uses]
    m2 = an.messages.create(model=model, max_tokens=N, tools=[an_tool], extra_body=GREEDY, messages=ask + [
        {"role": "assistant", "content": content}, {"role": "user", "content": results}])
    check(m2.stop_reason in ("end_turn", "max_tokens", "tool_use"), f"anthropic round trip {m2}")
    def prompt_of(u):  # Anthropic's input_tokens leaves out the tokens read from the cache
        return u.input_tokens + (u.cache_read_input_tokens or 0)
    check(prompt_of(m2.usage) > prompt_of(m.usage) + 10, f"round trip input {m2.usage} vs {m.usage}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tessera", required=True, help="the tessera binary, for `tessera generate`")
    ap.add_argument("--model-path", required=True)
    ap.add_argument("--pid", type=int, required=True, help="the server's process id (peak RSS)")
    ap.add_argument("--queue-url", help="a second server started with --max-queue 0 (429 check)")
    ap.add_argument("--reference-url", help="a server without a prefix cache (--engine serial): the uncached texts")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cors-origin", default="http://example.com")
    ap.add_argument("--tools", action="store_true", help="the model's template renders tools: check tool calls")
    ap.add_argument("--quick", action="store_true", help="only greedy chat/messages, streamed and not, vs generate")
    args = ap.parse_args()
    url, key, model = args.url, args.api_key, args.model
    started = time.time()
    oa = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=300)
    an = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, timeout=300)
    messages = [{"role": "user", "content": PROMPT}]

    step("models")
    # /v1/models
    ids = [m.id for m in oa.models.list().data]
    check(ids == [model], f"models: {ids}")

    # Chat, non-streaming and streaming (with usage) at temperature 0: the same text.
    chat = oa.chat.completions.create(model=model, messages=messages, max_tokens=N, temperature=0)
    text = chat.choices[0].message.content
    check(chat.choices[0].finish_reason in ("stop", "length"), f"finish_reason {chat.choices[0].finish_reason}")
    check(chat.usage.prompt_tokens > 0 and chat.usage.completion_tokens <= N, f"usage {chat.usage}")
    check(chat.usage.prompt_tokens_details.cached_tokens == 0, f"cached tokens {chat.usage}")
    check(chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens, "total_tokens")
    pieces, finish, usage = [], None, None
    for chunk in oa.chat.completions.create(model=model, messages=messages, max_tokens=N, temperature=0, stream=True,
                                            stream_options={"include_usage": True}):
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                pieces.append(c.delta.content)
            if c.finish_reason:
                finish = c.finish_reason
    check("".join(pieces) == text, f"streamed chat {''.join(pieces)!r} != {text!r}")
    check(finish == chat.choices[0].finish_reason, f"streamed finish {finish}")
    check(usage is not None and usage.completion_tokens == chat.usage.completion_tokens, f"streamed usage {usage}")

    step("generate comparison")
    # The server's greedy text is `tessera generate --temp 0`'s for the same prompt and length.
    generated = subprocess.run(
        [args.tessera, "generate", "-m", args.model_path, "-p", PROMPT, "--max-tokens", str(N), "--temp", "0"],
        capture_output=True, text=True, timeout=300)
    check(generated.returncode == 0, f"tessera generate failed: {generated.stderr}")
    check(generated.stdout == text + "\n", f"generate {generated.stdout!r} != server {text!r}")
    # On the CPU the batched engine's decode passes replay a captured step (the same logits as building
    # their graphs): SmolLM2's must have, the counter exists for any model.
    replayed = metric(url, key, "tessera_replayed_steps_total")
    check(replayed > 0 or "SmolLM2" not in model, f"no replayed decode steps on {model}")

    step("anthropic messages")
    # Anthropic: messages, streaming, stop_sequences, count_tokens; the same greedy text as chat.
    msg = an.messages.create(model=model, max_tokens=N, messages=messages, extra_body=GREEDY)
    mtext = "".join(b.text for b in msg.content if b.type == "text")
    check(mtext == text, f"anthropic {mtext!r} != openai {text!r}")
    check(msg.stop_reason in ("end_turn", "max_tokens"), f"stop_reason {msg.stop_reason}")
    check(msg.usage.output_tokens == chat.usage.completion_tokens, f"anthropic usage {msg.usage}")
    events, stext = [], []
    with an.messages.stream(model=model, max_tokens=N, messages=messages, extra_body=GREEDY) as stream:
        for event in stream:
            events.append(event.type)
            if event.type == "content_block_delta":
                stext.append(event.delta.text)
        final = stream.get_final_message()
    check("".join(stext) == text, f"anthropic streamed {''.join(stext)!r} != {text!r}")
    for t in ("message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta",
              "message_stop"):
        check(t in events, f"no {t} event in {sorted(set(events))}")
    check(final.stop_reason == msg.stop_reason and final.usage.output_tokens == msg.usage.output_tokens,
          f"final message {final.stop_reason} {final.usage}")
    step("prefix cache")
    # A multi-turn chat re-sent with one more turn reuses the earlier prompt's
    # KV (cached_tokens > 0) and says what a server without a cache says.
    turn1 = messages + [{"role": "assistant", "content": text}, {"role": "user", "content": "Now one about the moon."}]
    r1 = oa.chat.completions.create(model=model, messages=turn1, max_tokens=N, temperature=0)
    turn2 = turn1 + [{"role": "assistant", "content": r1.choices[0].message.content},
                     {"role": "user", "content": "And one about the stars."}]
    r2 = oa.chat.completions.create(model=model, messages=turn2, max_tokens=N, temperature=0)
    cached = r2.usage.prompt_tokens_details.cached_tokens
    # At least the previous turn's prompt (less its last token, "\n", which BPE may merge with the reply's text).
    check(cached >= r1.usage.prompt_tokens - 1, f"cached tokens {cached} < the previous turn's prompt {r1.usage.prompt_tokens}")
    check(cached < r2.usage.prompt_tokens, f"cached tokens {cached} >= prompt {r2.usage.prompt_tokens}")
    step(f"  cached {cached} of {r2.usage.prompt_tokens} prompt tokens")
    if args.reference_url:
        ref = openai.OpenAI(base_url=args.reference_url + "/v1", api_key=key, max_retries=0, timeout=300)
        for convo, r in ((turn1, r1), (turn2, r2)):
            u = ref.chat.completions.create(model=model, messages=convo, max_tokens=N, temperature=0)
            check(u.usage.prompt_tokens_details.cached_tokens == 0, f"the reference server cached {u.usage}")
            check(u.choices[0].message.content == r.choices[0].message.content,
                  f"cached {r.choices[0].message.content!r} != uncached {u.choices[0].message.content!r}")
    if not args.tools:
        # A model whose template does not render tools: a 400 that says so, never silently dropped.
        status, _, answer = http(url, "/v1/chat/completions", {
            "model": model, "messages": messages, "max_tokens": 2, "tools": [{"type": "function", "function": {
                "name": "f", "parameters": {"type": "object"}}}]}, {"authorization": "Bearer " + key})
        check(status == 400 and "does not render tools" in answer["error"]["message"], f"tools: {status} {answer}")
    if args.quick:
        print(json.dumps({"ok": True, "peak_rss_mib": peak_rss_mib(args.pid), "seconds": round(time.time() - started, 1)}))
        return

    step("stop strings")
    # A stop string spanning two tokens' text: cut before it, finish "stop", streamed the same.
    joined = [p for p in pieces if len(p) >= 2]
    check(len(joined) >= 3, f"too few pieces for the stop check: {pieces}")
    i = pieces.index(joined[1])
    stop = pieces[i][-2:] + pieces[i + 1][:1] if i + 1 < len(pieces) and pieces[i + 1] else pieces[i][-2:]
    cut = text[: text.index(stop)]
    stopped = oa.chat.completions.create(model=model, messages=messages, max_tokens=N, temperature=0, stop=[stop])
    check(stopped.choices[0].message.content == cut, f"stop {stop!r}: {stopped.choices[0].message.content!r} != {cut!r}")
    check(stopped.choices[0].finish_reason == "stop", f"stop finish {stopped.choices[0].finish_reason}")
    streamed = "".join(c.choices[0].delta.content or "" for c in oa.chat.completions.create(
        model=model, messages=messages, max_tokens=N, temperature=0, stop=[stop], stream=True) if c.choices)
    check(streamed == cut, f"streamed stop {streamed!r} != {cut!r}")

    step("logprobs")
    # logprobs / top_logprobs.
    lp = oa.chat.completions.create(model=model, messages=messages, max_tokens=4, temperature=0, logprobs=True,
                                    top_logprobs=3)
    content = lp.choices[0].logprobs.content
    check(len(content) == lp.usage.completion_tokens, f"logprobs entries {len(content)}")
    for entry in content:
        check(entry.logprob <= 0 and len(entry.top_logprobs) == 3, f"logprob entry {entry}")
        check(entry.top_logprobs[0].token == entry.token, "greedy token is not the top one")
        check(all(a.logprob >= b.logprob for a, b in zip(entry.top_logprobs, entry.top_logprobs[1:])), "top order")

    step("n>1")
    # n > 1 with a seed: n choices, reproducible.
    def sampled():
        r = oa.chat.completions.create(model=model, messages=messages, max_tokens=6, temperature=0.9, seed=1234, n=2)
        check(sorted(c.index for c in r.choices) == [0, 1], f"n=2 indices {[c.index for c in r.choices]}")
        return [c.message.content for c in r.choices]
    first, again = sampled(), sampled()
    check(first == again, f"seeded sampling differs: {first} vs {again}")

    step("completions")
    # /v1/completions, non-streaming and streaming.
    comp = oa.completions.create(model=model, prompt="The capital of France is", max_tokens=8, temperature=0)
    ctext = comp.choices[0].text
    cstream = "".join(c.choices[0].text for c in oa.completions.create(
        model=model, prompt="The capital of France is", max_tokens=8, temperature=0, stream=True) if c.choices)
    check(cstream == ctext, f"streamed completion {cstream!r} != {ctext!r}")
    check(comp.usage.completion_tokens <= 8 and comp.usage.prompt_tokens > 0, f"completion usage {comp.usage}")
    scored = oa.completions.create(model=model, prompt="The capital of France is", max_tokens=4, temperature=0,
                                   logprobs=2)
    lps = scored.choices[0].logprobs
    check(len(lps.tokens) == len(lps.token_logprobs) == len(lps.top_logprobs) == scored.usage.completion_tokens,
          f"completion logprobs {lps}")
    check(all(lp <= 0 for lp in lps.token_logprobs) and all(len(t) <= 2 for t in lps.top_logprobs), f"{lps}")
    check(scored.choices[0].text == ctext[: len(scored.choices[0].text)], "completion logprobs changed the text")

    step("response_format")
    # json_schema through the SDK: five of the 20 fixture schemas (StructuredOutputTests'), the
    # replies parse and validate with jsonschema, streamed the same; json_object gives an object.
    with open(SCHEMAS) as f:
        cases = json.load(f)["cases"]
    ask = [{"role": "user", "content": "Describe a thing as JSON."}]
    for case in cases[::4]:
        fmt = {"type": "json_schema", "json_schema": {"name": case["name"], "schema": case["schema"], "strict": True}}
        r = oa.chat.completions.create(model=model, messages=ask, max_tokens=160, temperature=0, response_format=fmt)
        reply = r.choices[0].message.content
        check(r.choices[0].finish_reason in ("stop", "length"), f"{case['name']}: finish {r.choices[0].finish_reason}: {reply!r}")
        try:
            jsonschema.validate(json.loads(reply), case["schema"])
        except (ValueError, jsonschema.ValidationError) as e:
            raise AssertionError(f"{case['name']}: {reply!r} is not valid: {e}")
        step(f"  {case['name']}: {json.dumps(json.loads(reply))}")
        if case is cases[0]:
            streamed = "".join(c.choices[0].delta.content or "" for c in oa.chat.completions.create(
                model=model, messages=ask, max_tokens=160, temperature=0, response_format=fmt, stream=True)
                if c.choices)
            check(streamed == reply, f"streamed json {streamed!r} != {reply!r}")
            seeded = oa.completions.create(model=model, prompt="JSON:", max_tokens=160, temperature=0.8, seed=7,
                                           extra_body={"response_format": fmt})
            jsonschema.validate(json.loads(seeded.choices[0].text), case["schema"])
    obj = oa.chat.completions.create(model=model, messages=ask, max_tokens=60, temperature=0,
                                     response_format={"type": "json_object"})
    check(isinstance(json.loads(obj.choices[0].message.content), dict), f"json_object {obj.choices[0].message.content!r}")
    status, _, answer = http(url, "/v1/chat/completions", {
        "model": model, "messages": ask, "max_tokens": 20, "response_format": {
            "type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "string", "pattern": "^a+$"}}}},
        {"authorization": "Bearer " + key})
    check(status == 400 and "pattern" in answer["error"]["message"], f"unsupported keyword: {status} {answer}")

    if args.tools:
        tool_checks(oa, an, model)

    step("anthropic stop sequences, count_tokens")
    sm = an.messages.create(model=model, max_tokens=N, messages=messages, stop_sequences=[stop],
                            system="You are a poet.", extra_body=GREEDY)
    check(sm.stop_reason in ("stop_sequence", "end_turn", "max_tokens"), f"system+stop reason {sm.stop_reason}")
    if sm.stop_reason == "stop_sequence":
        check(sm.stop_sequence == stop, f"stop_sequence {sm.stop_sequence}")
    ss = an.messages.create(model=model, max_tokens=N, messages=messages, stop_sequences=[stop], extra_body=GREEDY)
    check(ss.stop_reason == "stop_sequence" and ss.stop_sequence == stop, f"stop_sequences {ss.stop_reason}")
    check("".join(b.text for b in ss.content) == cut, "anthropic stop text")
    count = an.messages.count_tokens(model=model, messages=messages)
    check(count.input_tokens == msg.usage.input_tokens + (msg.usage.cache_read_input_tokens or 0)
          == chat.usage.prompt_tokens,
          f"count_tokens {count.input_tokens} vs {msg.usage.input_tokens} vs {chat.usage.prompt_tokens}")

    step("bad requests")
    # Bad requests: 4xx in each API's shape, the server unaffected.
    auth = {"authorization": "Bearer " + key}
    good = {"model": model, "messages": messages, "max_tokens": 2}
    bad_openai = [
        ("malformed JSON", None, b'{"model": ', 400),
        ("wrong type", {**good, "max_tokens": "ten"}, None, 400),
        ("wrong type temperature", {**good, "temperature": "hot"}, None, 400),
        ("unknown model", {**good, "model": "no-such-model"}, None, 404),
        ("empty messages", {**good, "messages": []}, None, 400),
        ("negative max_tokens", {**good, "max_tokens": -3}, None, 400),
        ("over the context", {**good, "max_tokens": 10_000_000}, None, 400),
        ("json_schema keyword", {**good, "response_format": {"type": "json_schema", "json_schema": {
            "name": "x", "schema": {"type": "string", "format": "date"}}}}, None, 400),
        ("response_format type", {**good, "response_format": {"type": "yaml"}}, None, 400),
        ("oversized body", None, b'{"model": "' + b"x" * (5 << 20) + b'"}', 413),
    ]
    for name, body, raw, want in bad_openai:
        status, _, answer = http(url, "/v1/chat/completions", body, auth, raw=raw)
        check(status == want, f"openai {name}: status {status}, want {want}: {answer}")
        openai_error_shape(answer, status, f"openai {name}")
    good_an = {"model": model, "messages": messages, "max_tokens": 2}
    bad_anthropic = [
        ("malformed JSON", None, b"{]", 400),
        ("wrong type", {**good_an, "messages": "hi"}, None, 400),
        ("unknown model", {**good_an, "model": "claude-nope"}, None, 404),
        ("empty messages", {**good_an, "messages": []}, None, 400),
        ("negative max_tokens", {**good_an, "max_tokens": -1}, None, 400),
        ("missing max_tokens", {"model": model, "messages": messages}, None, 400),
        ("oversized body", None, b'{"model": "' + b"x" * (5 << 20) + b'"}', 413),
    ]
    for name, body, raw, want in bad_anthropic:
        status, _, answer = http(url, "/v1/messages", body, {"x-api-key": key}, raw=raw)
        check(status == want, f"anthropic {name}: status {status}, want {want}: {answer}")
        anthropic_error_shape(answer, f"anthropic {name}")
    # No key or a wrong one: 401 in each shape; /health stays open.
    status, _, answer = http(url, "/v1/chat/completions", good)
    check(status == 401, f"no key: {status}")
    openai_error_shape(answer, status, "no key")
    status, _, answer = http(url, "/v1/messages", good_an, {"x-api-key": "wrong"})
    check(status == 401, f"wrong key: {status}")
    anthropic_error_shape(answer, "wrong key")
    try:
        openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0).models.list()
        check(False, "the SDK with a wrong key was let in")
    except openai.AuthenticationError:
        pass
    try:
        an.messages.create(model="claude-nope", max_tokens=2, messages=messages)
        check(False, "unknown model accepted")
    except anthropic.NotFoundError:
        pass
    try:
        oa.chat.completions.create(model=model, messages=[], max_tokens=2)
        check(False, "empty messages accepted")
    except openai.BadRequestError:
        pass
    status, _, answer = http(url, "/health")
    check(status == 200 and answer == {"status": "ok"}, f"health {status} {answer}")
    # CORS preflight from the allowed origin.
    status, headers, _ = http(url, "/v1/chat/completions", method="OPTIONS",
                              headers={"origin": args.cors_origin, "access-control-request-method": "POST"})
    allow = {k.lower(): v for k, v in headers.items()}.get("access-control-allow-origin")
    check(allow == args.cors_origin, f"CORS preflight {status}: allow-origin {allow}")
    # Still serving after all of that.
    after = oa.chat.completions.create(model=model, messages=messages, max_tokens=N, temperature=0)
    check(after.choices[0].message.content == text, "greedy text changed after the bad requests")

    step("disconnect")
    # A client that disconnects mid-stream stops its sequence (the engine goes idle).
    before = metric(url, key, "tessera_generated_tokens_total")
    stream = oa.chat.completions.create(model=model, messages=messages, max_tokens=1500, temperature=0, stream=True)
    for n, _ in enumerate(stream):
        if n >= 3:
            break
    stream.close()
    deadline = time.time() + 60
    while time.time() < deadline and metric(url, key, "tessera_active_sequences") > 0:
        time.sleep(0.1)
    check(metric(url, key, "tessera_active_sequences") == 0, "the disconnected stream's sequence still runs")
    check(metric(url, key, "tessera_kv_cache_bytes") == 0, "KV cache bytes left after the disconnect")
    spent = metric(url, key, "tessera_generated_tokens_total") - before
    check(spent < 500, f"the disconnected sequence generated {spent} tokens (max_tokens 1500)")
    # A non-streaming client that leaves (its socket closed while the answer is
    # being generated) stops its sequence too: the server counts it cancelled.
    cancelled = metric(url, key, "tessera_cancelled_streams_total")
    before = metric(url, key, "tessera_generated_tokens_total")
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    story = [{"role": "user", "content": "Tell a very long story about the sea, in twenty chapters."}]
    body = json.dumps({"model": model, "messages": story, "max_tokens": 1500, "temperature": 0}).encode()
    with socket.create_connection((host.strip("[]"), int(port)), timeout=60) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        deadline = time.time() + 60
        while time.time() < deadline and metric(url, key, "tessera_generated_tokens_total") - before < 3:
            time.sleep(0.05)
        check(metric(url, key, "tessera_active_sequences") >= 1, "the non-streamed request ended before the test left")
        at_close = metric(url, key, "tessera_generated_tokens_total")
    deadline = time.time() + 60
    while time.time() < deadline and metric(url, key, "tessera_active_sequences") > 0:
        time.sleep(0.1)
    check(metric(url, key, "tessera_active_sequences") == 0, "the left non-streamed request's sequence still runs")
    check(metric(url, key, "tessera_kv_cache_bytes") == 0, "KV cache bytes left after the non-streamed client left")
    check(metric(url, key, "tessera_cancelled_streams_total") == cancelled + 1,
          "the non-streamed request whose client left was not cancelled")
    # How many tokens run before the server notices depends on the model's
    # speed and the machine's load (a tiny model in a release build makes
    # thousands a second, and the metric requests above take time on a busy
    # 2-core box): the bound is on what ran after the socket closed, a third
    # of max_tokens, so a server that ignored the leave fails it.
    spent = metric(url, key, "tessera_generated_tokens_total") - at_close
    check(spent < 500, f"the left non-streamed sequence generated {spent} tokens after its client left (max_tokens 1500)")

    step("queue full")
    # Queue full: 429 with Retry-After in each shape (a server with --max-queue 0).
    if args.queue_url:
        qa = openai.OpenAI(base_url=args.queue_url + "/v1", api_key=key, max_retries=0, timeout=300)
        busy = qa.chat.completions.create(model=model, messages=messages, max_tokens=1500, stream=True)
        next(iter(busy))  # the sequence runs: the queue (0 places) is full
        status, headers, answer = http(args.queue_url, "/v1/chat/completions", good, auth)
        check(status == 429, f"queue full: {status} {answer}")
        openai_error_shape(answer, status, "queue full")
        check(int({k.lower(): v for k, v in headers.items()}.get("retry-after", "0")) >= 1, f"Retry-After {headers}")
        status, headers, answer = http(args.queue_url, "/v1/messages", good_an, {"x-api-key": key})
        check(status == 529, f"anthropic queue full: {status}")
        anthropic_error_shape(answer, "anthropic queue full")
        check(answer["error"]["type"] == "overloaded_error", f"anthropic queue full: {answer}")
        check(int({k.lower(): v for k, v in headers.items()}.get("retry-after", "0")) >= 1, f"Retry-After {headers}")
        try:
            anthropic.Anthropic(base_url=args.queue_url, api_key=key, max_retries=0, timeout=300).messages.create(
                model=model, max_tokens=2, messages=[{"role": "user", "content": "hi"}])
            check(False, "a full queue accepted an Anthropic request")
        except anthropic.APIStatusError as e:  # OverloadedError in recent SDKs
            check(e.status_code == 529, f"anthropic SDK saw {e.status_code}")
        try:
            qa.chat.completions.create(model=model, messages=messages, max_tokens=2)
            check(False, "a full queue accepted a request")
        except openai.RateLimitError:
            pass
        busy.close()

    step("load")
    # Load: concurrent streaming clients, a few rounds, no errors.
    load_started = time.time()
    def client(i):
        if i % 2:
            s = oa.chat.completions.create(model=model, messages=[{"role": "user", "content": f"Count to {i}."}],
                                           max_tokens=4, temperature=0.7, seed=i, stream=True)
            return sum(1 for c in s if c.choices and c.choices[0].delta.content)
        with an.messages.stream(model=model, max_tokens=4, messages=[{"role": "user", "content": f"Say {i}."}]) as s:
            return len(list(s.text_stream))
    errors = 0
    for _ in range(args.rounds):
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            for f in [pool.submit(client, i) for i in range(args.clients)]:
                try:
                    f.result()
                except Exception as e:  # counted, then reported
                    errors += 1
                    print(f"load error: {e!r}", file=sys.stderr)
    check(errors == 0, f"{errors} load errors")
    # Nothing left behind: no sequence running or waiting, no cache bytes (the
    # engine retires a sequence at the end of the step that sent its last
    # token, which a loaded box can run after the client has read it: wait for it).
    for name in ("tessera_active_sequences", "tessera_queued_sequences", "tessera_kv_cache_bytes"):
        deadline = time.time() + 30
        while time.time() < deadline and metric(url, key, name) != 0:
            time.sleep(0.1)
        value = metric(url, key, name)
        check(value == 0, f"{name} is {value} after the load")
    load_seconds = time.time() - load_started
    _, _, metrics_text = http(url, "/metrics", headers=auth)
    for name in ("tessera_requests_total", "tessera_time_to_first_token_seconds_bucket",
                 "tessera_inter_token_seconds_bucket", "tessera_prefix_cache_hit_tokens_total"):
        check(name in metrics_text, f"/metrics lacks {name}")
    check('status="400"' in metrics_text and 'status="401"' in metrics_text, "/metrics lacks 4xx counts")

    print(json.dumps({"ok": True, "peak_rss_mib": peak_rss_mib(args.pid), "load_clients": args.clients,
                      "load_rounds": args.rounds, "load_seconds": round(load_seconds, 1),
                      "seconds": round(time.time() - started, 1)}))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
