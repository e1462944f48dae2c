#!/usr/bin/env python3
"""Random JSON schemas (fixed seed) for the structured-output tests, with
instances that Python's `jsonschema` says are valid and invalid, written to
Tests/Fixtures/structured/schemas.json.

The schemas use the subset Tessera enforces (type incl. type lists, properties,
required, additionalProperties: false, enum, const, items, minItems, maxItems,
anyOf/oneOf of disjoint alternatives). Valid instances are compact JSON of
declared properties only (what the automaton generates); invalid ones are
mutations (a required key dropped, an undeclared key, a wrong type, an enum
miss, too many items, broken syntax) that jsonschema rejects.

pip install jsonschema   (run from the repository root)
"""
import json
import os
import random

import jsonschema

OUT = "Tests/Fixtures/structured/schemas.json"
SEED = 20241205
N_SCHEMAS = 20
WORDS = ["name", "age", "city", "tags", "score", "ok", "id", "items", "note", "kind", "level", "color", "size", "email"]
STRINGS = ["red", "green", "blue", "small", "large", "yes", "no", "alpha", "beta"]


def gen_schema(rng, depth):
    kinds = ["string", "number", "integer", "boolean", "null", "enum", "const", "nullable"]
    if depth < 2:
        kinds += ["object", "array", "anyOf", "object"]
    k = rng.choice(kinds)
    if k in ("string", "number", "integer", "boolean", "null"):
        return {"type": k}
    if k == "enum":
        values = rng.sample(STRINGS, rng.randint(2, 4))
        if rng.random() < 0.3:
            values.append(rng.randint(0, 20))
        return {"enum": values}
    if k == "const":
        return {"const": rng.choice([rng.choice(STRINGS), rng.randint(-5, 50), True, None])}
    if k == "nullable":
        return {"type": [rng.choice(["string", "integer", "number", "boolean"]), "null"]}
    if k == "object":
        return gen_object(rng, depth + 1)
    if k == "array":
        lo = rng.randint(0, 2)
        return {"type": "array", "items": gen_schema(rng, depth + 1), "minItems": lo, "maxItems": lo + rng.randint(0, 3)}
    # anyOf / oneOf of alternatives no value can both match
    alts = rng.sample([{"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "null"},
                       gen_object(rng, depth + 1)], 2)
    return {rng.choice(["anyOf", "oneOf"]): alts}


def gen_object(rng, depth):
    names = rng.sample(WORDS, rng.randint(1, 3 if depth > 1 else 4))
    props = {n: gen_schema(rng, depth) for n in names}
    required = [n for n in names if rng.random() < 0.7]
    schema = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    if rng.random() < 0.3:
        schema["title"] = "Thing"
        schema["description"] = "A generated object."
    return schema


def gen_instance(rng, s):
    if "const" in s:
        return s["const"]
    if "enum" in s:
        return rng.choice(s["enum"])
    for key in ("anyOf", "oneOf"):
        if key in s:
            return gen_instance(rng, rng.choice(s[key]))
    t = s.get("type")
    if isinstance(t, list):
        t = rng.choice(t)
    if t == "string":
        return rng.choice(STRINGS + ["", "with \"quotes\"", "ünïcødé ✓", "tab\tnew\nline"])
    if t == "number":
        return rng.choice([0, -1.5, 3.25, 1e-3, 42, 2.5e10])
    if t == "integer":
        return rng.randint(-100, 100)
    if t == "boolean":
        return rng.random() < 0.5
    if t == "null":
        return None
    if t == "array":
        n = rng.randint(s.get("minItems", 0), s.get("maxItems", 3))
        return [gen_instance(rng, s["items"]) for _ in range(n)]
    if t == "object":
        out = {}
        for name, sub in s["properties"].items():
            if name in s.get("required", []) or rng.random() < 0.5:
                out[name] = gen_instance(rng, sub)
        return out
    raise ValueError(s)


def mutations(rng, schema, instance):
    """Candidate invalid texts; only those jsonschema rejects (or that do not parse) are kept."""
    text = json.dumps(instance, ensure_ascii=False, separators=(",", ":"))
    out = [text[:-1], text + "}", text.replace(":", "", 1), "[" + text + "]", text + " x"]
    if isinstance(instance, dict):
        extra = dict(instance)
        extra["zzz_extra"] = 1
        out.append(json.dumps(extra, separators=(",", ":")))
        for name in schema.get("required", []):
            dropped = {k: v for k, v in instance.items() if k != name}
            out.append(json.dumps(dropped, ensure_ascii=False, separators=(",", ":")))
        for name in instance:
            wrong = dict(instance)
            wrong[name] = {"nested": [1, 2]} if not isinstance(instance[name], dict) else "text"
            out.append(json.dumps(wrong, ensure_ascii=False, separators=(",", ":")))
    kept = []
    for t in out:
        try:
            value = json.loads(t)
        except ValueError:
            kept.append(t)
            continue
        if not jsonschema.Draft202012Validator(schema).is_valid(value):
            kept.append(t)
    return kept


def main():
    rng = random.Random(SEED)
    cases = []
    for i in range(N_SCHEMAS):
        schema = gen_object(rng, 1)
        jsonschema.Draft202012Validator.check_schema(schema)
        valid, invalid = [], []
        for _ in range(4):
            inst = gen_instance(rng, schema)
            jsonschema.validate(inst, schema)
            valid.append(json.dumps(inst, ensure_ascii=False, separators=(",", ":")))
            invalid += mutations(rng, schema, inst)
        # Whitespace as a pretty printer writes it (within the automaton's bound).
        valid.append(json.dumps(gen_instance(rng, schema), ensure_ascii=False, separators=(", ", ": ")))
        cases.append({"name": f"schema{i:02d}", "schema": schema, "valid": sorted(set(valid)), "invalid": sorted(set(invalid))})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"seed": SEED, "cases": cases}, f, ensure_ascii=False, indent=1)
    print(len(cases), "schemas,", sum(len(c["valid"]) for c in cases), "valid,", sum(len(c["invalid"]) for c in cases), "invalid")


if __name__ == "__main__":
    main()
