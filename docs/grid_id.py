#!/usr/bin/env python3
"""Reference implementation of dbopt grid ids (docs/grid-ids.md), Python 3, stdlib only.

    python3 docs/grid_id.py '{"lr": 0.10, "algo": "ucb1"}'     canonical text, sha256, id
    python3 docs/grid_id.py --chars 12 --volatile run_label -  read the parameters from stdin
    python3 docs/grid_id.py --check crates/exp/tests/vectors.json
    python3 docs/grid_id.py --self-test                        RFC 8785 number vectors

Other languages can port this file: it reads the parameter text itself (so that `1.00` and
`1` are both seen), applies the steps of docs/grid-ids.md in order and prints the result.
"""

import argparse
import hashlib
import json
import sys

DEFAULT_ID_CHARS = 8
MAX_EXACT_INTEGER = 2**53
VOLATILE_KEYS = {
    "timestamp", "datetime", "hostname", "host", "pid", "cwd", "workdir", "tmpdir", "path", "dir",
}
VOLATILE_SUFFIXES = ("_at", "_timestamp", "_path", "_dir", "_host", "_hostname")
SEED_KEY = "seed"


class GridIdError(ValueError):
    """A parameter set that has no canonical form."""


class Double(float):
    """A JSON number read as an IEEE-754 double (it had a fraction or an exponent)."""


def _ascii_lower(text):
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def is_volatile_key(key):
    """Step 1: whether a key names something that changes between runs of the same grid."""
    if key.startswith("_"):
        return True
    lower = _ascii_lower(key)
    return lower in VOLATILE_KEYS or lower.endswith(VOLATILE_SUFFIXES)


def _reject_constant(name):
    raise GridIdError(f"{name} is not JSON: write the value as a string")


def _read_int(text):
    value = int(text)
    # serde_json (the Rust reader) keeps integers in [-2^63, 2^64) and reads any other
    # integer literal as a double; the reference does the same so both see one value.
    if -(2**63) <= value < 2**64:
        return value
    return Double(float(text))


def parse_params(text):
    """Reads JSON text, keeping integers apart from doubles (1 is an int, 1.0 a Double)."""
    return json.loads(
        text,
        parse_float=lambda s: Double(float(s)),
        parse_int=_read_int,
        parse_constant=_reject_constant,
    )


def _strip(value, extra):
    if isinstance(value, dict):
        return {
            k: _strip(v, extra)
            for k, v in value.items()
            if not is_volatile_key(k) and k not in extra
        }
    if isinstance(value, list):
        return [_strip(v, extra) for v in value]
    return value


def format_number(x):
    """ECMAScript Number.prototype.toString of a double (RFC 8785, section 3.2.2.3)."""
    if x != x or x in (float("inf"), float("-inf")):
        raise GridIdError(f"number {x} is not finite and has no JSON form; write it as a string")
    if x == 0:
        return "0"  # also -0
    # repr gives the shortest digits that round-trip; take them apart into digits and the
    # position n of the decimal point (value = 0.DIGITS * 10^n).
    text = repr(abs(float(x)))
    mantissa, _, exp = text.partition("e")
    int_part, _, frac = mantissa.partition(".")
    digits = int_part + frac
    n = len(int_part) + (int(exp) if exp else 0)
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    sign = "-" if x < 0 else ""
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        body = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-")
        body += str(abs(e))
    return sign + body


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string(s):
    out = ['"']
    for c in s:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif ord(c) < 0x20:
            out.append(f"\\u{ord(c):04x}")
        elif 0xD800 <= ord(c) <= 0xDFFF:
            raise GridIdError(f"string {s!r} holds a lone surrogate: it is not valid Unicode")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _utf16_key(key):
    try:
        return key.encode("utf-16-be")
    except UnicodeEncodeError:
        raise GridIdError(f"key {key!r} holds a lone surrogate: it is not valid Unicode") from None


def canonical_json(value, path="(top level)"):
    """Step 3: the RFC 8785 (JCS) text of any JSON value."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Double):
        try:
            return format_number(value)
        except GridIdError as e:
            raise GridIdError(f"parameter `{path}`: {e}") from None
    if isinstance(value, int):
        if abs(value) > MAX_EXACT_INTEGER:
            raise GridIdError(
                f"parameter `{path}`: integer {value} is beyond 2^53 and would not hash "
                "exactly; write it as a string"
            )
        return str(value)
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        base = "" if path == "(top level)" else path
        return "[" + ",".join(canonical_json(v, f"{base}[{i}]") for i, v in enumerate(value)) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=_utf16_key)
        parts = []
        for k in keys:
            child = k if path == "(top level)" else f"{path}.{k}"
            parts.append(_string(k) + ":" + canonical_json(value[k], child))
        return "{" + ",".join(parts) + "}"
    raise GridIdError(f"{type(value).__name__} is not a JSON value")


def canonicalize(params, extra_volatile=()):
    """Steps 1 to 4: returns (canonical text, sha256 hex) of a parameter set."""
    if not isinstance(params, dict):
        kind = ("null" if params is None else "a boolean" if isinstance(params, bool)
                else "an array" if isinstance(params, list)
                else "a string" if isinstance(params, str) else "a number")
        raise GridIdError(f"the parameter set is {kind}, not a JSON object")
    kept = _strip(params, set(extra_volatile))
    kept.pop(SEED_KEY, None)
    text = canonical_json(kept)
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()


def grid_id(sha256_hex, chars=DEFAULT_ID_CHARS):
    """The first `chars` hex characters of the hash (1 to 64)."""
    if not 1 <= chars <= 64:
        raise GridIdError(f"--chars {chars}: an id has 1 to 64 characters")
    return sha256_hex[:chars]


def check(path):
    """Verifies a vectors file; returns the number of mismatches."""
    with open(path, encoding="utf-8") as f:
        vectors = json.load(f)
    bad = 0
    for v in vectors:
        name = v["name"]
        try:
            text, digest = canonicalize(parse_params(v["params_text"]), v.get("extra_volatile", []))
        except (GridIdError, ValueError) as e:
            if "error" in v:
                continue
            print(f"FAIL {name}: {e}")
            bad += 1
            continue
        if "error" in v:
            print(f"FAIL {name}: expected an error ({v['error']}), got {text}")
            bad += 1
            continue
        for field, got in (("canonical", text), ("sha256", digest), ("grid_id", grid_id(digest))):
            if v[field] != got:
                print(f"FAIL {name}: {field} is {got!r}, the vector says {v[field]!r}")
                bad += 1
    print(f"{bad} mismatch(es) in {len(vectors)} vectors" if bad else f"{len(vectors)} vectors ok")
    return bad


# RFC 8785, Appendix B: IEEE-754 double (hex bits) -> ECMAScript text; None = error.
RFC8785_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("7fffffffffffffff", None),
    ("7ff0000000000000", None),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def self_test():
    """Checks format_number against RFC 8785's table; returns the number of mismatches."""
    import struct

    bad = 0
    for bits, want in RFC8785_NUMBERS:
        x = struct.unpack(">d", bytes.fromhex(bits))[0]
        try:
            got = format_number(x)
        except GridIdError:
            got = None
        if got != want:
            print(f"FAIL {bits}: {got!r}, RFC 8785 says {want!r}")
            bad += 1
    print(f"{len(RFC8785_NUMBERS) - bad} of {len(RFC8785_NUMBERS)} RFC 8785 numbers ok")
    return bad


def main(argv):
    p = argparse.ArgumentParser(description="Canonical text, sha256 and grid id of a parameter set.")
    p.add_argument("params", nargs="?", help="the parameter set as JSON text, or - for stdin")
    p.add_argument("--chars", type=int, default=DEFAULT_ID_CHARS, help="id length (1 to 64)")
    p.add_argument("--volatile", action="append", default=[], metavar="KEY",
                   help="one more key to drop at every depth (repeatable)")
    p.add_argument("--check", metavar="FILE", help="verify a vectors file")
    p.add_argument("--self-test", action="store_true", help="check the RFC 8785 number table")
    args = p.parse_args(argv)
    if args.self_test:
        return 1 if self_test() else 0
    if args.check:
        return 1 if check(args.check) else 0
    if args.params is None:
        p.error("give the parameters as JSON text (or -), --check FILE or --self-test")
    text = sys.stdin.read() if args.params == "-" else args.params
    try:
        canonical, digest = canonicalize(parse_params(text), args.volatile)
        gid = grid_id(digest, args.chars)
    except (GridIdError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"canonical: {canonical}")
    print(f"sha256:    {digest}")
    print(f"grid_id:   {gid}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
