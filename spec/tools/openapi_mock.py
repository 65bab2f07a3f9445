#!/usr/bin/python3
"""An OpenAPI mock of the vendor's API, independent of our C code: it reads
spec/fixtures/openapi.yaml (a copy of ../shared/api/openapi.yaml) itself and
checks with jsonschema. Used by spec/conformance_spec.lua; runs on Debian's
python3 with python3-yaml and python3-jsonschema.

  openapi_mock.py generate [--count N] [--seed S]
      For every operation's documented answers (2xx and the 4xx with an
      ErrorResponse), N schema-valid bodies, the same for the same seed, and
      every response example verbatim. One JSON line each:
      {"operation", "method", "path", "status", "name", "body": "<JSON text>"}.
  openapi_mock.py validate-request METHOD PATH?QUERY [BODY]
      Checks one request against its operation; exit 0 valid, 1 invalid.
  openapi_mock.py validate-request -
      The same for JSON lines {"method", "path", "body"} on stdin; one line
      {"valid": bool, "errors": [...]} out for each.
"""
import json
import os
import random
import re
import sys
import urllib.parse

import jsonschema
import yaml

SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "openapi.yaml")
METHODS = ("get", "put", "post", "delete", "patch")
MAX_EXACT = 2 ** 53   # ids stay below: beyond it a double names another run (the client refuses those)


def load(path=SPEC):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def resolver(doc):
    def resolve(ref):
        node = doc
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        return node
    return resolve


def convert(schema, resolve):
    """OpenAPI schema -> JSON Schema 2020-12. The file says openapi 3.1 but is
    written in 3.0's dialect, so: $ref inlined (the validator then needs no
    resolver), and `nullable: true` (no JSON Schema keyword) becomes "null" in
    `type`. A nullable schema without a type already allows anything."""
    if "$ref" in schema:
        return convert(resolve(schema["$ref"]), resolve)
    out = {k: v for k, v in schema.items() if k not in ("nullable", "examples", "example")}
    if "properties" in schema:   # a map of names to schemas, not a schema itself
        out["properties"] = {k: convert(v, resolve) for k, v in schema["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            out[key] = convert(schema[key], resolve)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            out[key] = [convert(s, resolve) for s in schema[key]]
    if schema.get("nullable") and "type" in schema:
        out["type"] = [schema["type"], "null"]
        if "enum" in schema:   # enum restricts every value, null included
            out["enum"] = schema["enum"] + [None]
    return out


def operations(doc):
    """(method, path template, operation) for every operation in the file."""
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def check(schema, value):
    """The validator's messages for value (empty when valid)."""
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in validator.iter_errors(value)]


# --- generate ------------------------------------------------------------------

class Raw(str):
    """A number written as this exact text (exponents, -0), which json.dumps cannot spell."""


def dump(value):
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + dump(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


# Numbers a strict client may refuse where the schema says only `number`.
ID_NUMBERS = ["0", "-0", "1", "-1", "0.5", "-273.15", "1e3", "2.5E-3", "-4e+2", "1.0", "1E0", "123456789.125",
              "9007199254740991", "-9007199254740991", "8.9e15", "4503599627370495.5"]
NUMBERS = ID_NUMBERS + ["1e20", "-1.5e300", "1.7976931348623157e308", "5e-324"]
STRINGS = ["", " ", "main", "<string>", 'quote " backslash \\ slash /', "line\nbreak\ttab\r", "nul\u0000byte",
           "\u00e9\u65e5\u672c\u8a9e \U0001F600", "\u202eRTL\u2028line sep", "e\u0301 combining", "\ufeffBOM",
           "2024-01-15T10:30:00.000Z", "null", "123"]
EXTRA_NAMES = ["", "x", "0", "undocumented", "n\u00e4me \U0001F511", "null", "__index", "message", "error", "data",
               "snooze_info", "state"]
# The code points a random string draws from: ASCII, Latin-1, CJK, emoji (no surrogates: not characters).
RANGES = [(0x20, 0x7E), (0xA0, 0xFF), (0x4E00, 0x4FFF), (0x1F300, 0x1F64F)]

# How often each choice goes which way: body i of an answer takes PROFILES[i]
# while there are any, then "random", so each extreme is covered every run.
PROFILES = [
    ("minimal", dict(optional=0.0, null=0.0, extra=0.0, long_array=0.0, long_string=0.0)),
    ("full", dict(optional=1.0, null=0.0, extra=1.0, long_array=0.0, long_string=0.0)),
    ("nulls", dict(optional=1.0, null=1.0, extra=0.0, long_array=0.0, long_string=0.0)),
    ("long arrays", dict(optional=1.0, null=0.2, extra=0.5, long_array=1.0, long_string=0.01)),
    ("long strings", dict(optional=1.0, null=0.0, extra=0.5, long_array=0.0, long_string=1.0)),
]
RANDOM = ("random", dict(optional=0.5, null=0.3, extra=0.3, long_array=0.05, long_string=0.02))


class Generator:
    def __init__(self, rng, odds):
        self.rng, self.odds = rng, odds

    def chance(self, what):
        return self.rng.random() < self.odds[what]

    def value(self, schema, name=None, depth=0):
        rng = self.rng
        if "enum" in schema:
            return rng.choice(schema["enum"])
        if "anyOf" in schema:
            return self.value(rng.choice(schema["anyOf"]), name, depth)
        types = schema.get("type")
        if types is None:
            return self.anything(depth)
        types = types if isinstance(types, list) else [types]
        if "null" in types and self.chance("null"):
            return None
        kind = rng.choice([t for t in types if t != "null"])
        return getattr(self, kind)(schema, name, depth)

    def anything(self, depth):
        """Any JSON value, nested a few levels."""
        kinds = ["null", "boolean", "number", "string"] + (["array", "object"] if depth < 3 else [])
        kind = self.rng.choice(kinds)
        return None if kind == "null" else getattr(self, kind)({}, None, depth + 1)

    def boolean(self, schema, name, depth):
        return self.rng.random() < 0.5

    def number(self, schema, name, depth):
        rng = self.rng
        if name == "id":   # the one documented refusal: see MAX_EXACT
            pick = rng.choice([Raw(rng.choice(ID_NUMBERS)), rng.randint(1 - MAX_EXACT, MAX_EXACT - 1)])
        else:
            pick = rng.choice([Raw(rng.choice(NUMBERS)), round(rng.uniform(-1e6, 1e6), rng.randint(0, 6)),
                               rng.randint(-10 ** 18, 10 ** 18)])
        return pick

    def integer(self, schema, name, depth):
        low = schema.get("minimum", -1000)
        high = schema.get("maximum", low + 10 ** 6)
        return self.rng.choice([low, high, self.rng.randint(low, high)])

    def string(self, schema, name, depth):
        rng = self.rng
        if self.chance("long_string"):
            size = rng.randint(1000, 3000)
        elif rng.random() < 0.5:
            return rng.choice(STRINGS)
        else:
            size = rng.randint(0, 30)
        return "".join(chr(rng.randint(*rng.choice(RANGES))) for _ in range(size))

    def array(self, schema, name, depth):
        rng = self.rng
        size = rng.randint(100, 200) if self.chance("long_array") else rng.choice([0, 0, 1, 2, 3, 5, 8])
        items = schema.get("items", {})
        return [self.value(items, None, depth + 1) for _ in range(size)]

    def object(self, schema, name, depth):
        rng, out = self.rng, {}
        properties, required = schema.get("properties", {}), schema.get("required", [])
        for key, sub in properties.items():
            if key in required or self.chance("optional"):
                out[key] = self.value(sub, key, depth + 1)
        extra = schema.get("additionalProperties", True)
        if extra is not False and (self.chance("extra") or (not properties and rng.random() < 0.5)):
            for key in rng.sample(EXTRA_NAMES, rng.randint(1, 4)):
                if key not in properties:
                    out[key] = self.value(extra, None, depth + 1) if isinstance(extra, dict) else self.anything(depth)
        return out


def answers(doc):
    """(method, path, operation, status, media) for every documented JSON answer
    that is a success or an error with a body."""
    for method, path, op in operations(doc):
        for status, response in op.get("responses", {}).items():
            media = response.get("content", {}).get("application/json")
            if media and (status.startswith("2") or status.startswith("4")):
                yield method, path, op, int(status), media


def generate(doc, count, seed):
    resolve = resolver(doc)
    for method, path, op, status, media in answers(doc):
        schema = convert(media["schema"], resolve)
        head = {"operation": op["operationId"], "method": method, "path": path, "status": status}
        bodies = [(f"example {name}", dump(example["value"])) for name, example in media.get("examples", {}).items()]
        # One stream per answer: adding an endpoint does not change another's bodies.
        rng = random.Random(f"{seed}:{method}:{path}:{status}")
        for i in range(count):
            profile, odds = PROFILES[i] if i < len(PROFILES) else RANDOM
            bodies.append((f"#{i} {profile}", dump(Generator(rng, odds).value(schema))))
        for name, text in bodies:
            problems = check(schema, json.loads(text))
            if problems:   # the generator's bug, never a finding about the client
                raise SystemExit(f"generated an invalid body for {method} {path} {status} {name}: {problems}")
            print(json.dumps(dict(head, name=f"{op['operationId']} {status} {name}", body=text)))


# --- validate-request -------------------------------------------------------------

def coerce(text, schema):
    """A path or query value (always text) as the parameter's schema types it."""
    kind = schema.get("type")
    if kind == "integer":
        return int(text) if re.fullmatch(r"-?[0-9]+", text) else text   # left as text: fails `type`
    if kind == "number":
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    return text


def described_format(param, text):
    """What a description promises beyond the schema: environment_ids is only
    `type: string`, described as "Comma-separated environment IDs"; IDs are
    whole numbers from 1, as every id parameter of the file is."""
    if re.search(r"comma-separated .*\bIDs\b", param.get("description", ""), re.I):
        if not re.fullmatch(r"[1-9][0-9]*(,[1-9][0-9]*)*", text):
            return [f"{param['name']}: {text!r} is not comma-separated IDs (whole numbers from 1)"]
    return []


def match(doc, method, path):
    """The operation for method and path, and the path's parameters."""
    for m, template, op in operations(doc):
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        found = re.match(pattern, path)
        if m == method and found:
            return op, {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
    return None, None


def validate_request(doc, method, target, body):
    """The problems of one request (empty when it is valid)."""
    resolve = resolver(doc)
    path, _, query = target.partition("?")
    op, path_values = match(doc, method.upper(), path)
    if op is None:
        return [f"no operation for {method} {path}"]
    errors = []
    try:   # form style: name=value pairs, percent-decoded
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as e:
        return [f"query: {e}"]
    query_values = {}
    for name, value in pairs:
        if name in query_values:
            errors.append(f"{name}: given twice (every parameter here is a single value)")
        query_values[name] = value
    params = op.get("parameters", [])
    known = {p["name"] for p in params if p["in"] == "query"}
    errors += [f"{name}: not a query parameter of {op['operationId']}" for name in query_values if name not in known]
    for param in params:
        values = path_values if param["in"] == "path" else query_values
        if param["name"] not in values:
            if param.get("required"):
                errors.append(f"{param['name']}: required {param['in']} parameter missing")
            continue
        text = values[param["name"]]
        schema = convert(param["schema"], resolve)
        errors += [f"{param['name']}={text!r}: {m.split(': ', 1)[1]}" for m in check(schema, coerce(text, schema))]
        errors += described_format(param, text)
    request_body = op.get("requestBody")
    if body in (None, ""):
        if request_body and request_body.get("required"):
            errors.append("body: required")
    elif not request_body:
        errors.append(f"body: {op['operationId']} takes none")
    else:
        try:
            value = json.loads(body)
        except ValueError as e:
            return errors + [f"body: not JSON: {e}"]
        errors += check(convert(request_body["content"]["application/json"]["schema"], resolve), value)
    return errors


def main(argv):
    doc = load()
    if argv[:1] == ["generate"]:
        opts = dict(zip(argv[1::2], argv[2::2]))
        generate(doc, int(opts.get("--count", 20)), opts.get("--seed", "1"))
        return 0
    if argv[:2] == ["validate-request", "-"]:
        for line in sys.stdin:
            if line.strip():
                req = json.loads(line)
                errors = validate_request(doc, req["method"], req["path"], req.get("body"))
                print(json.dumps({"valid": not errors, "errors": errors}, ensure_ascii=False))
        return 0
    if argv[:1] == ["validate-request"] and len(argv) in (3, 4):
        errors = validate_request(doc, argv[1], argv[2], argv[3] if len(argv) == 4 else None)
        print("\n".join(errors) if errors else "valid")
        return 1 if errors else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
