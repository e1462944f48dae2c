#!/usr/bin/env python3
"""Renders the chat templates in Tests/Fixtures/chat_templates/*.jinja with
Jinja2 exactly as transformers' apply_chat_template configures it (its own
compiled environment: trim_blocks, lstrip_blocks, loopcontrols,
raise_exception, strftime_now, namespace, tojson without ASCII escaping),
for several conversations, and writes the expected strings (or the
exception message) to Tests/Fixtures/chat_templates/expected.json.

pip install transformers jinja2   (run from the repository root)

The templates are data, verbatim from the models' tokenizer_config.json
(copies kept in llama.cpp's models/templates): SmolLM2-135M-Instruct (from
its GGUF's tokenizer.chat_template), Llama 3.1 (as Llama 3.3 ships it),
Llama 3.2, Qwen2.5, Qwen3, Mistral Nemo, Phi-3.5-mini, Gemma 2, Hermes 3
(tool use: recursive macros); plus
features.jinja, written here to cover the Jinja features those templates do
not use. strftime_now is pinned to NOW so outputs are reproducible.
"""
import datetime
import json
import os

from transformers.utils.chat_template_utils import _compile_jinja_template

DIR = "Tests/Fixtures/chat_templates"
NOW = datetime.datetime(2024, 7, 26, 15, 4, 5, tzinfo=datetime.timezone.utc)

SPECIAL = {
    "smollm2": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
    "llama-3.1": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama-3.2": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "qwen2.5": {"eos_token": "<|im_end|>"},
    "qwen3": {"eos_token": "<|im_end|>"},
    "mistral-nemo": {"bos_token": "<s>", "eos_token": "</s>"},
    "phi-3.5": {"bos_token": "<s>", "eos_token": "<|endoftext|>"},
    "gemma-2": {"bos_token": "<bos>", "eos_token": "<eos>"},
    "hermes-3-tool-use": {"bos_token": "<|begin_of_text|>", "eos_token": "<|im_end|>"},
    "features": {"bos_token": "<s>", "eos_token": "</s>"},
}
TOOL_TEMPLATES = {"llama-3.1", "llama-3.2", "qwen2.5", "qwen3", "mistral-nemo", "hermes-3-tool-use", "features"}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city — in °C or °F.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "description": "  Forecast days  "},
                "hours": {"type": "array", "items": {"type": "number"}, "description": "Hours"},
                "extra": {"type": "object", "additionalProperties": {"type": ["string", "boolean"]}, "description": "More"},
            },
            "required": ["city"],
        },
    },
}

CONVERSATIONS = {
    "user-only": [{"role": "user", "content": "Hello!"}],
    "system-user": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "What is 2+2?"},
    ],
    "multi-turn": [
        {"role": "system", "content": "  Be kind.  \n"},
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke about \"quotes\" and 'apostrophes'."},
    ],
    "no-system-multi-turn": [
        {"role": "user", "content": "Bonjour, ça va ? 你好 🤖"},
        {"role": "assistant", "content": "  Oui, très bien.\n\nEt toi ?  "},
        {"role": "user", "content": "Line one\nLine two\ttabbed"},
    ],
    "thinking": [
        {"role": "user", "content": "Think first."},
        {"role": "assistant", "content": "<think>\nLet me think.\n</think>\n\nThe answer is 4."},
        {"role": "user", "content": "And now?"},
    ],
    "tool-call": [
        {"role": "system", "content": "You can call tools."},
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{
            "id": "call12345", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
        {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "{\"temperature\": 22, \"sky\": \"clear\"}"},
        {"role": "user", "content": "Thanks!"},
    ],
    "tool-dict-content": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [{
            "id": "abcdefghi", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Zürich"}}}]},
        {"role": "tool", "tool_call_id": "abcdefghi", "content": {"temperature": 18.5, "ok": True, "note": None}},
    ],
    "parallel-tool-calls": [
        {"role": "user", "content": "Weather in Paris and Tokyo, in °F?"},
        {"role": "assistant", "content": "Checking both.", "tool_calls": [
            {"id": "call00001", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "fahrenheit", "hours": [9, 12.5]}}},
            {"id": "call00002", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Tokyo {\"quoted\"}", "extra": {"note": "</tool_call>"}}}}]},
        {"role": "tool", "tool_call_id": "call00001", "name": "get_weather", "content": "{\"temperature\": 71}"},
        {"role": "tool", "tool_call_id": "call00002", "name": "get_weather", "content": "{\"temperature\": 80}"},
    ],
    "content-parts": [
        {"role": "user", "content": [{"type": "text", "text": "Describe"}, {"type": "image"}, {"type": "text", "text": "this."}]},
    ],
}


def render(compiled, messages, tools, add_generation_prompt, special, extra):
    # As transformers' render_jinja_template calls it.
    return compiled.render(messages=messages, tools=tools, documents=None,
                           add_generation_prompt=add_generation_prompt, **special, **extra)


def main():
    cases = []
    for name in sorted(SPECIAL):
        source = open(os.path.join(DIR, name + ".jinja")).read()
        compiled = _compile_jinja_template(source)
        compiled.environment.globals["strftime_now"] = lambda fmt: NOW.strftime(fmt)
        for conv_name, messages in CONVERSATIONS.items():
            tool_variants = [None, [WEATHER_TOOL]] if name in TOOL_TEMPLATES else [None]
            if conv_name.startswith("tool") and name not in TOOL_TEMPLATES:
                continue
            for tools in tool_variants:
                for agp in (False, True):
                    extras = [{}]
                    if name == "qwen3":
                        extras = [{}, {"enable_thinking": False}]
                    if name.startswith("llama-3"):
                        extras = [{}, {"date_string": "01 Jan 2025", "tools_in_user_message": False}]
                    for extra in extras:
                        case = {"template": name, "conversation": conv_name, "messages": messages,
                                "tools": tools, "add_generation_prompt": agp,
                                "special_tokens": SPECIAL[name], "extra": extra}
                        try:
                            case["output"] = render(compiled, messages, tools, agp, SPECIAL[name], extra)
                        except Exception as e:  # raise_exception and Python errors alike
                            case["error"] = str(e)
                            case["error_type"] = type(e).__name__
                        cases.append(case)
    out = {"now": NOW.timestamp(), "cases": cases}
    with open(os.path.join(DIR, "expected.json"), "w") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    print(len(cases), "cases,", sum("error" in c for c in cases), "errors")


if __name__ == "__main__":
    main()
