#!/usr/bin/env python3
"""Validates generated JSON against schemas with Python's jsonschema (used by
StructuredOutputTests). Input: a JSON file holding a list of
{"schema": ..., "output": "<generated text>"}. Prints one line per entry,
"ok" or "FAIL <reason>"; exits 0 when all are ok, 1 when any fails, 3 when
jsonschema is not installed (the test then skips, unless required).

pip install jsonschema
"""
import json
import sys

try:
    import jsonschema
except ImportError:
    print("jsonschema is not installed")
    sys.exit(3)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        entries = json.load(f)
    failed = 0
    for i, e in enumerate(entries):
        try:
            value = json.loads(e["output"])
            jsonschema.Draft202012Validator(e["schema"]).validate(value)
            print("ok", i, json.dumps(value, ensure_ascii=False))
        except (ValueError, jsonschema.ValidationError) as err:
            failed += 1
            print("FAIL", i, repr(e["output"]), str(err).splitlines()[0])
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
